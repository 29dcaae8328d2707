using Broker.Security;

namespace Broker.Node.Commands;

/// <summary>
/// <c>Broker.Node passwd &lt;file&gt; add|change|remove &lt;user&gt; [--password P] [--iterations N]</c>: edits the password file
/// named by Auth:PasswordFile. The password comes from --password or from the first line of standard input (so that
/// it stays out of the process list: <c>echo "$PW" | Broker.Node passwd ...</c>). The file is written to a temporary
/// file and renamed over the old one, so a running broker never reads half a file; it picks the change up by itself.
/// </summary>
public static class PasswdCommand
{
    public const string Usage = "usage: Broker.Node passwd <file> add|change|remove <user> [--password <password>] [--iterations <n>]";

    public static int Run(string[] args, TextReader stdin, TextWriter stdout, TextWriter stderr)
    {
        string? password = null;
        var iterations = PasswordHasher.DefaultIterations;
        var positional = new List<string>();
        for (var i = 0; i < args.Length; i++)
        {
            if (args[i] == "--password" && i + 1 < args.Length)
            {
                password = args[++i];
            }
            else if (args[i] == "--iterations" && i + 1 < args.Length && int.TryParse(args[i + 1], out var n) && n >= 1000)
            {
                iterations = n;
                i++;
            }
            else if (args[i].StartsWith("--", StringComparison.Ordinal))
            {
                stderr.WriteLine($"passwd: unknown or incomplete option '{args[i]}' (--iterations needs a number of at least 1000)");
                stderr.WriteLine(Usage);
                return 2;
            }
            else
            {
                positional.Add(args[i]);
            }
        }

        if (positional.Count != 3 || positional[1] is not ("add" or "change" or "remove"))
        {
            stderr.WriteLine(Usage);
            return 2;
        }

        var (path, action, user) = (positional[0], positional[1], positional[2]);
        if (user.Length == 0 || user.Contains(':') || user.Contains('\n'))
        {
            stderr.WriteLine($"passwd: '{user}' is not a valid username (no ':' or line breaks)");
            return 2;
        }

        List<KeyValuePair<string, string>> users;
        try
        {
            users = File.Exists(path) ? PasswordFile.Parse(File.ReadAllText(path), path).Users.ToList() : new();
            if (File.Exists(path))
            {
                // Keep the file's order: ImmutableDictionary does not.
                var order = File.ReadAllLines(path).Select(l => l.Split(':', 2)[0]).ToList();
                users = users.OrderBy(u => order.IndexOf(u.Key)).ToList();
            }
        }
        catch (SecurityFileException e)
        {
            stderr.WriteLine($"passwd: {e.Message}");
            return 1;
        }

        var index = users.FindIndex(u => u.Key == user);
        if (action == "add" && index >= 0)
        {
            stderr.WriteLine($"passwd: user '{user}' already exists in {path} (use change)");
            return 1;
        }

        if (action is "change" or "remove" && index < 0)
        {
            stderr.WriteLine($"passwd: user '{user}' is not in {path}");
            return 1;
        }

        if (action == "remove")
        {
            users.RemoveAt(index);
        }
        else
        {
            password ??= stdin.ReadLine();
            if (string.IsNullOrEmpty(password))
            {
                stderr.WriteLine("passwd: no password given (--password or a line on standard input)");
                return 2;
            }

            var entry = new KeyValuePair<string, string>(user, PasswordHasher.Hash(password, iterations));
            if (index >= 0)
            {
                users[index] = entry;
            }
            else
            {
                users.Add(entry);
            }
        }

        Write(path, PasswordFile.Format(users));
        stdout.WriteLine($"passwd: {action} {user}: {path} now has {users.Count} user(s)");
        return 0;
    }

    private static void Write(string path, string text)
    {
        var full = Path.GetFullPath(path);
        var temp = Path.Combine(Path.GetDirectoryName(full)!, $".{Path.GetFileName(full)}.{Environment.ProcessId}.tmp");
        File.WriteAllText(temp, text);
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(temp, UnixFileMode.UserRead | UnixFileMode.UserWrite); // hashes are for the broker only
        }

        File.Move(temp, full, overwrite: true);
    }
}
