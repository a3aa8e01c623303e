using YamlDotNet.RepresentationModel;

namespace Wharf.Tests.Deploy;

/// <summary>Small helpers over YamlDotNet's representation model.</summary>
public static class Yaml
{
    public static YamlMappingNode Load(string text)
    {
        var stream = new YamlStream();
        stream.Load(new StringReader(text));
        return (YamlMappingNode)stream.Documents.Single().RootNode;
    }

    public static YamlNode? Get(this YamlNode node, string key) =>
        node is YamlMappingNode map && map.Children.TryGetValue(new YamlScalarNode(key), out var v) ? v : null;

    public static YamlMappingNode Map(this YamlNode node, string key) =>
        node.Get(key) as YamlMappingNode ?? throw new KeyNotFoundException($"no mapping '{key}'");

    public static string? Str(this YamlNode node, string key) => (node.Get(key) as YamlScalarNode)?.Value;

    public static IEnumerable<(string Key, YamlNode Value)> Entries(this YamlNode node) =>
        ((YamlMappingNode)node).Children.Select(kv => (((YamlScalarNode)kv.Key).Value!, kv.Value));

    public static IEnumerable<string> Strings(this YamlNode? node) =>
        node is YamlSequenceNode seq ? seq.Children.Select(c => ((YamlScalarNode)c).Value!) : [];

    /// <summary>A compose environment block, in map or list form.</summary>
    public static Dictionary<string, string> Environment(this YamlNode service)
    {
        var env = new Dictionary<string, string>(StringComparer.Ordinal);
        switch (service.Get("environment"))
        {
            case YamlMappingNode map:
                foreach (var (k, v) in map.Entries())
                {
                    env[k] = ((YamlScalarNode)v).Value ?? "";
                }
                break;
            case YamlSequenceNode list:
                foreach (var item in list.Strings())
                {
                    var eq = item.IndexOf('=');
                    env[item[..eq]] = item[(eq + 1)..];
                }
                break;
        }
        return env;
    }
}
