using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;

namespace Wharf.Gateway.Auth;

/// <summary>
/// Users from an htpasswd file with bcrypt entries (<c>user:$2y$…</c>, as <c>htpasswd -B</c> and CNCF Distribution
/// use), re-read when the file changes. bcrypt is deliberately slow (tens of ms), so a verified pair is remembered
/// for a minute by a SHA-256 of the password, never the password itself.
/// </summary>
public sealed class HtpasswdFile(string path)
{
    private static readonly TimeSpan VerifiedFor = TimeSpan.FromMinutes(1);

    private readonly ConcurrentDictionary<string, (string PasswordHash, DateTimeOffset Until)> _verified = new(StringComparer.Ordinal);
    private Dictionary<string, string> _users = new(StringComparer.Ordinal);
    private DateTime _loadedWrite = DateTime.MinValue;

    /// <summary>Lines that are not user:bcrypt (skipped, so they never match).</summary>
    public IReadOnlyList<string> Skipped { get; private set; } = [];

    public static Dictionary<string, string> Parse(string text, out List<string> skipped)
    {
        var users = new Dictionary<string, string>(StringComparer.Ordinal);
        skipped = [];
        foreach (var raw in text.Split('\n'))
        {
            var line = raw.Trim();
            if (line.Length == 0 || line.StartsWith('#'))
            {
                continue;
            }
            var colon = line.IndexOf(':');
            var hash = colon > 0 ? line[(colon + 1)..] : "";
            if (colon <= 0 || !(hash.StartsWith("$2y$", StringComparison.Ordinal) || hash.StartsWith("$2a$", StringComparison.Ordinal) || hash.StartsWith("$2b$", StringComparison.Ordinal)))
            {
                skipped.Add(colon > 0 ? line[..colon] : "(malformed line)");
                continue;
            }
            users[line[..colon]] = hash;
        }
        return users;
    }

    /// <summary>Whether the file still names this user (a refresh token's subject must).</summary>
    public bool Contains(string user)
    {
        Reload();
        return _users.ContainsKey(user);
    }

    public bool Verify(string user, string password)
    {
        Reload();
        if (!_users.TryGetValue(user, out var hash))
        {
            // Spend the same time as a real check, so timing does not tell which users exist.
            BCrypt.Net.BCrypt.Verify(password, "$2y$05$rUm0JXU6N5y5cCLKE0lTAeCxgxp62KG2jNejCcXpVvlfapz5rUZBG");
            return false;
        }
        var passwordHash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(hash + "\0" + password)));
        if (_verified.TryGetValue(user, out var seen) && seen.Until > DateTimeOffset.UtcNow
            && CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(seen.PasswordHash), Encoding.ASCII.GetBytes(passwordHash)))
        {
            return true;
        }
        bool ok;
        try
        {
            ok = BCrypt.Net.BCrypt.Verify(password, hash);
        }
        catch (BCrypt.Net.SaltParseException)
        {
            ok = false;
        }
        if (ok)
        {
            _verified[user] = (passwordHash, DateTimeOffset.UtcNow + VerifiedFor);
        }
        return ok;
    }

    private void Reload()
    {
        var write = File.GetLastWriteTimeUtc(path);
        if (write == _loadedWrite)
        {
            return;
        }
        lock (this)
        {
            if (write == _loadedWrite)
            {
                return;
            }
            _users = Parse(File.ReadAllText(path), out var skipped);
            Skipped = skipped;
            _verified.Clear();
            _loadedWrite = write;
        }
    }
}
