using System.Collections.Immutable;

namespace Broker.Security;

/// <summary>
/// The password file: one <c>username:hash</c> per line (the hash as written by <see cref="PasswordHasher"/>),
/// blank lines and lines starting with '#' ignored. Usernames may not contain ':'; a username may appear once.
/// </summary>
public sealed class PasswordFile
{
    private PasswordFile(ImmutableDictionary<string, string> users)
    {
        Users = users;
    }

    public static PasswordFile Empty { get; } = new(ImmutableDictionary<string, string>.Empty);

    /// <summary>Username to encoded hash (usernames are case-sensitive, as in MQTT).</summary>
    public ImmutableDictionary<string, string> Users { get; }

    /// <summary>Parses the text; throws <see cref="SecurityFileException"/> naming the first bad line.</summary>
    public static PasswordFile Parse(string text, string path)
    {
        var users = ImmutableDictionary.CreateBuilder<string, string>(StringComparer.Ordinal);
        var lineNumber = 0;
        foreach (var raw in text.Split('\n'))
        {
            lineNumber++;
            var line = raw.TrimEnd('\r');
            if (line.Trim().Length == 0 || line.TrimStart().StartsWith('#'))
            {
                continue;
            }

            var colon = line.IndexOf(':');
            if (colon <= 0)
            {
                throw new SecurityFileException(path, lineNumber, "expected username:hash");
            }

            var user = line[..colon];
            var hash = line[(colon + 1)..].Trim();
            if (!PasswordHasher.IsWellFormed(hash))
            {
                throw new SecurityFileException(path, lineNumber,
                    $"the hash of user '{user}' is not a {PasswordHasher.Prefix} or $7$ PBKDF2 hash (write it with 'Broker.Node passwd')");
            }

            if (!users.TryAdd(user, hash))
            {
                throw new SecurityFileException(path, lineNumber, $"user '{user}' appears twice");
            }
        }

        return new PasswordFile(users.ToImmutable());
    }

    /// <summary>The file's text, users in the given order (keeps an operator's ordering when rewritten).</summary>
    public static string Format(IEnumerable<KeyValuePair<string, string>> users) =>
        string.Concat(users.Select(u => $"{u.Key}:{u.Value}\n"));
}

/// <summary>A password or ACL file that cannot be used, with the line at fault (1-based; 0 for the whole file).</summary>
public sealed class SecurityFileException : Exception
{
    public SecurityFileException(string path, int line, string problem)
        : base(line > 0 ? $"{path} line {line}: {problem}" : $"{path}: {problem}")
    {
        Path = path;
        Line = line;
    }

    public string Path { get; }

    public int Line { get; }
}
