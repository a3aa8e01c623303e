namespace Wharf.Tests.Deploy;

/// <summary>A Dockerfile read into stages of instructions (line continuations joined, comments dropped).</summary>
public sealed class Dockerfile
{
    public sealed record Instruction(string Keyword, string Arguments);

    public sealed record Stage(string From, string? Name, List<Instruction> Instructions);

    public List<Instruction> Preamble { get; } = [];

    public List<Stage> Stages { get; } = [];

    public static Dockerfile Parse(string text)
    {
        var file = new Dockerfile();
        var logical = new List<string>();
        var current = "";
        foreach (var raw in text.Split('\n'))
        {
            var line = raw.TrimEnd('\r');
            if (line.TrimStart().StartsWith('#'))
            {
                continue;
            }
            if (line.EndsWith('\\'))
            {
                current += line[..^1] + " ";
                continue;
            }
            current += line;
            if (current.Trim().Length > 0)
            {
                logical.Add(current.Trim());
            }
            current = "";
        }
        foreach (var line in logical)
        {
            var space = line.IndexOf(' ');
            var keyword = (space < 0 ? line : line[..space]).ToUpperInvariant();
            var args = space < 0 ? "" : line[(space + 1)..].Trim();
            if (keyword == "FROM")
            {
                var parts = args.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                file.Stages.Add(new Stage(parts[0], parts.Length >= 3 && parts[1].Equals("AS", StringComparison.OrdinalIgnoreCase) ? parts[2] : null, []));
            }
            else if (file.Stages.Count == 0)
            {
                file.Preamble.Add(new Instruction(keyword, args));
            }
            else
            {
                file.Stages[^1].Instructions.Add(new Instruction(keyword, args));
            }
        }
        return file;
    }

    public Stage Named(string name) => Stages.Single(s => s.Name == name);

    /// <summary>A stage's instructions with those of the stages it is built FROM first (the image's effective settings).</summary>
    public List<Instruction> Effective(string name)
    {
        var stage = Named(name);
        var inherited = Stages.Any(s => s.Name == stage.From) ? Effective(stage.From) : [];
        return [.. inherited, .. stage.Instructions];
    }

    /// <summary>ENV in the effective image: later settings win. Handles <c>ENV a=b c=d</c> on one instruction.</summary>
    public Dictionary<string, string> Env(string name)
    {
        var env = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var i in Effective(name).Where(i => i.Keyword == "ENV"))
        {
            foreach (var pair in i.Arguments.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            {
                var eq = pair.IndexOf('=');
                env[pair[..eq]] = pair[(eq + 1)..].Trim('"');
            }
        }
        return env;
    }

    public string? Last(string name, string keyword) => Effective(name).LastOrDefault(i => i.Keyword == keyword)?.Arguments;
}
