using System.CommandLine;
using DedupFs.Cli.Mounting;

namespace DedupFs.Cli.Commands;

/// <summary>
/// dedupfs clone SRC DST: DST becomes a copy of SRC (a file, or a whole tree) that shares every
/// page with it: a consistent snapshot taken inside the daemon, with modes, owners, times,
/// xattrs and hard links kept. Nothing is copied; a later write to either side breaks the
/// sharing for that file only.
/// </summary>
internal static class CloneCommand
{
    public static Command Create()
    {
        var source = new Argument<string>("source") { Description = "A file or directory inside a DedupFs mount" };
        var destination = new Argument<string>("destination") { Description = "A new name in the same mount (must not exist)" };
        var command = new Command("clone", "Clone a file or a directory tree inside a mount, instantly") { source, destination };
        command.SetAction(result => Run(result.GetValue(source)!, result.GetValue(destination)!, Console.Error));
        return command;
    }

    internal static int Run(string source, string destination, TextWriter error)
    {
        try
        {
            string root = ControlClient.RequireMountRoot(source);
            string? parent = Path.GetDirectoryName(Path.GetFullPath(destination).TrimEnd('/'));
            if (parent == null || ControlClient.FindMountRoot(parent) != root)
                throw new ControlException($"{destination}: not in the same DedupFs mount as {source} ({root})");
            if (Path.Exists(destination)) throw new ControlException($"{destination}: already exists");
            ControlClient.Request(root, "clone", ControlClient.Relative(root, source) + "\n" + ControlClient.Relative(root, destination));
            return 0;
        }
        catch (ControlException e)
        {
            error.WriteLine($"dedupfs: clone: {e.Message}");
            return 1;
        }
    }
}
