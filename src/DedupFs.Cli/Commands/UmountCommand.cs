using System.CommandLine;
using DedupFs.Fuse.Mounting;

namespace DedupFs.Cli.Commands;

/// <summary>
/// dedupfs umount MOUNTPOINT: unmounts; also removes a mount whose daemon died ("Transport
/// endpoint is not connected"), which a plain unmount of a busy mount cannot.
/// </summary>
internal static class UmountCommand
{
    public static Command Create()
    {
        var mountPoint = new Argument<string>("mountpoint") { Description = "Where the filesystem is mounted" };
        var lazy = new Option<bool>("--lazy", "-z") { Description = "Detach now even if files are open (MNT_DETACH)" };
        var command = new Command("umount", "Unmount a DedupFs mount, or clean up one whose daemon died") { mountPoint, lazy };
        command.SetAction(result => Run(result.GetValue(mountPoint)!, result.GetValue(lazy)));
        return command;
    }

    private static int Run(string mountPoint, bool lazy)
    {
        try
        {
            bool dead = IsDisconnected(mountPoint);
            if (!FuseMounter.Unmount(mountPoint, lazy || dead))
            {
                Console.Error.WriteLine($"dedupfs: {mountPoint} is not a FUSE mount point");
                return 1;
            }

            if (dead)
            {
                Console.Error.WriteLine($"dedupfs: {mountPoint}: its daemon was gone; the stale mount was removed");
            }

            return 0;
        }
        catch (FuseMountException e)
        {
            Console.Error.WriteLine($"dedupfs: {e.Message}");
            return 1;
        }
    }

    /// <summary>A mount whose daemon died answers ENOTCONN to everything.</summary>
    private static bool IsDisconnected(string mountPoint)
    {
        try
        {
            _ = Directory.GetFileSystemEntries(mountPoint).Length;
            return false;
        }
        catch (IOException e)
        {
            return e.Message.Contains("not connected", StringComparison.OrdinalIgnoreCase);
        }
        catch (UnauthorizedAccessException)
        {
            return false;
        }
    }
}
