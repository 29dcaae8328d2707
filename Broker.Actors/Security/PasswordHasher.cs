using System.Security.Cryptography;
using System.Text;

namespace Broker.Security;

/// <summary>
/// Salted PBKDF2 password hashes in a self-describing string, in the manner of Mosquitto's <c>$7$</c> format
/// (<c>$7$iterations$salt$hash</c>, PBKDF2-HMAC-SHA512): ours is
/// <code>
///   $pbkdf2-sha256$&lt;iterations&gt;$&lt;base64 salt (16 bytes)&gt;$&lt;base64 hash (32 bytes)&gt;
/// </code>
/// so that the iteration count can be raised for new entries while old ones still verify. Mosquitto's own
/// <c>$7$</c> lines (from <c>mosquitto_passwd</c>) are verified too, so an existing password file can be reused.
/// </summary>
public static class PasswordHasher
{
    public const string Prefix = "$pbkdf2-sha256$";
    private const string MosquittoPrefix = "$7$";

    /// <summary>
    /// 100,000 rounds: about 30-60 ms per check on one core of a small server, which bounds a guessing attacker while
    /// a reconnect storm of thousands of clients still gets through (successful checks are cached briefly as well).
    /// OWASP's 2023 advice for SHA-256 is 600,000; raise it with <c>passwd --iterations</c>.
    /// </summary>
    public const int DefaultIterations = 100_000;

    public static string Hash(string password, int iterations = DefaultIterations)
    {
        if (iterations < 1000)
        {
            throw new ArgumentOutOfRangeException(nameof(iterations), "at least 1000 iterations");
        }

        var salt = RandomNumberGenerator.GetBytes(16);
        var hash = Rfc2898DeriveBytes.Pbkdf2(Encoding.UTF8.GetBytes(password), salt, iterations, HashAlgorithmName.SHA256, 32);
        return $"{Prefix}{iterations}${Convert.ToBase64String(salt)}${Convert.ToBase64String(hash)}";
    }

    /// <summary>True when the string has a form this class can verify (used when a password file is parsed).</summary>
    public static bool IsWellFormed(string encoded) => TryParse(encoded, out _, out _, out _, out _);

    /// <summary>Constant-time comparison of the derived key; false for a malformed hash string.</summary>
    public static bool Verify(ReadOnlySpan<byte> password, string encoded)
    {
        if (!TryParse(encoded, out var algorithm, out var iterations, out var salt, out var expected))
        {
            return false;
        }

        var actual = Rfc2898DeriveBytes.Pbkdf2(password, salt, iterations, algorithm, expected.Length);
        return CryptographicOperations.FixedTimeEquals(actual, expected);
    }

    private static bool TryParse(string encoded, out HashAlgorithmName algorithm, out int iterations, out byte[] salt, out byte[] hash)
    {
        algorithm = HashAlgorithmName.SHA256;
        iterations = 0;
        salt = hash = [];
        string rest;
        if (encoded.StartsWith(Prefix, StringComparison.Ordinal))
        {
            rest = encoded[Prefix.Length..];
        }
        else if (encoded.StartsWith(MosquittoPrefix, StringComparison.Ordinal))
        {
            algorithm = HashAlgorithmName.SHA512;
            rest = encoded[MosquittoPrefix.Length..];
        }
        else
        {
            return false;
        }

        var parts = rest.Split('$');
        if (parts.Length != 3 || !int.TryParse(parts[0], out iterations) || iterations < 1 || iterations > 100_000_000)
        {
            return false;
        }

        try
        {
            salt = Convert.FromBase64String(parts[1]);
            hash = Convert.FromBase64String(parts[2]);
        }
        catch (FormatException)
        {
            return false;
        }

        return salt.Length > 0 && hash.Length >= 16;
    }
}
