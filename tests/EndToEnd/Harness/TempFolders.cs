namespace Wharf.Tests.EndToEnd.Harness;

public static class TempFolders
{
    /// <summary>
    /// A new folder under the temp folder. Short, because containerd's unix socket paths must stay under 108 bytes,
    /// and lower case, because podman names an image pulled from <c>oci:PATH</c> after the path.
    /// </summary>
    public static string Create(string prefix)
    {
        while (true)
        {
            var path = Path.Combine(Path.GetTempPath(), prefix + Guid.NewGuid().ToString("N")[..10]);
            if (!Directory.Exists(path))
            {
                return Directory.CreateDirectory(path).FullName;
            }
        }
    }

    public static void TryDelete(string path)
    {
        for (var attempt = 0; attempt < 3; attempt++)
        {
            try
            {
                if (Directory.Exists(path))
                {
                    Directory.Delete(path, recursive: true);
                }
                return;
            }
            catch (IOException)
            {
                Thread.Sleep(200);
            }
            catch (UnauthorizedAccessException)
            {
                Thread.Sleep(200);
            }
        }
    }
}
