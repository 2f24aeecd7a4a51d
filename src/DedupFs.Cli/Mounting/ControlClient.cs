using System.Text;
using DedupFs.Fuse.Mounting;

namespace DedupFs.Cli.Mounting;

/// <summary>
/// Talks to a running daemon through its control directory, MNT/.dedupfs/: statistics are
/// files to read, and a request (clone, shares) is a write to a request file followed by a read
/// of the answer on the same descriptor. No socket and no extra protocol: permissions, the mount
/// namespace and "which daemon" all come from the path, as with /sys/kernel/mm/ksm.
/// </summary>
internal static class ControlClient
{
    public const string DirectoryName = ".dedupfs";

    /// <summary>The DedupFs mount that holds <paramref name="path"/> (its mount point), or null.</summary>
    public static string? FindMountRoot(string path)
    {
        string full = Path.GetFullPath(path).TrimEnd('/');
        var mounts = MountTable.Read().Where(m => m.FsType == "fuse.dedupfs").Select(m => m.MountPoint).ToHashSet(StringComparer.Ordinal);
        for (string? dir = full.Length == 0 ? "/" : full; dir != null; dir = Path.GetDirectoryName(dir))
        {
            if (mounts.Contains(dir)) return dir;
        }

        return null;
    }

    /// <summary>The mount root for <paramref name="path"/>, or a one-line error for the user.</summary>
    public static string RequireMountRoot(string path) =>
        FindMountRoot(path) ?? throw new ControlException($"{path}: not inside a DedupFs mount");

    /// <summary>Path of <paramref name="path"/> relative to <paramref name="root"/> ("" for the root).</summary>
    public static string Relative(string root, string path)
    {
        string full = Path.GetFullPath(path).TrimEnd('/');
        return full.Length <= root.Length ? "" : full[(root.Length + 1)..];
    }

    public static string ReadText(string root, string name)
    {
        try
        {
            return File.ReadAllText(Path.Combine(root, DirectoryName, name));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ControlException($"{root}: cannot read {DirectoryName}/{name}: {e.Message}");
        }
    }

    /// <summary>Writes <paramref name="request"/> to the request file and returns what reading it back gives.</summary>
    public static string Request(string root, string name, string request)
    {
        string file = Path.Combine(root, DirectoryName, name);
        try
        {
            using var stream = new FileStream(file, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite, 1, FileOptions.None);
            byte[] bytes = Encoding.UTF8.GetBytes(request);
            stream.Write(bytes);
            stream.Flush();
            stream.Position = 0;
            using var reader = new StreamReader(stream, Encoding.UTF8);
            return reader.ReadToEnd();
        }
        catch (IOException e)
        {
            throw new ControlException(Describe(e));
        }
        catch (UnauthorizedAccessException e)
        {
            throw new ControlException(e.Message);
        }
    }

    // .NET words an errno from write(2) as a sentence with the path; keep only the reason.
    private static string Describe(IOException e) => e.Message;
}

/// <summary>A control request failed; the message is for the user.</summary>
internal sealed class ControlException(string message) : Exception(message);
