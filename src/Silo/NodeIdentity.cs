namespace Wharf.Silo;

/// <summary>
/// The node's persistent id, kept in its data folder (DESIGN principle 3): placement identifies nodes by this,
/// never by Orleans' SiloAddress, whose generation changes on every restart.
/// </summary>
public sealed record NodeIdentity(string Id)
{
    public static NodeIdentity LoadOrCreate(string dataPath)
    {
        var file = Path.Combine(dataPath, "node-id");
        if (File.Exists(file))
        {
            var text = File.ReadAllText(file).Trim();
            if (text.Length > 0)
            {
                return new NodeIdentity(text);
            }
        }
        var id = Guid.NewGuid().ToString("N")[..16];
        var tmp = file + ".tmp";
        File.WriteAllText(tmp, id);
        File.Move(tmp, file, overwrite: true);
        return new NodeIdentity(id);
    }
}
