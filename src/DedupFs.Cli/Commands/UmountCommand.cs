using System.CommandLine;
using DedupFs.Fuse.Mounting;

namespace DedupFs.Cli.Commands;

/// <summary>
/// dedupfs umount MOUNTPOINT: unmounts, then waits until the daemon has committed the store and
/// let go of it (its lock), so that when the command returns the data is durable and the store
/// can be mounted again or checked. Also removes a mount whose daemon died ("Transport endpoint
/// is not connected"), which a plain unmount of a busy mount cannot.
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
            string? store = StoreOf(mountPoint);
            if (!FuseMounter.Unmount(mountPoint, lazy || dead))
            {
                Console.Error.WriteLine($"dedupfs: {mountPoint} is not a FUSE mount point");
                return 1;
            }

            if (dead)
            {
                Console.Error.WriteLine($"dedupfs: {mountPoint}: its daemon was gone; the stale mount was removed");
            }
            else if (store != null && !lazy && !WaitForDaemon(store))
            {
                Console.Error.WriteLine($"dedupfs: {mountPoint} is unmounted but its daemon still holds {store} after 10 minutes; see {Path.Combine(store, MountCommand.LogFileName)}");
                return 1;
            }

            return 0;
        }
        catch (FuseMountException e)
        {
            Console.Error.WriteLine($"dedupfs: {e.Message}");
            return 1;
        }
    }

    /// <summary>The store behind a DedupFs mount: its source in the mount table, which the daemon sets.</summary>
    private static string? StoreOf(string mountPoint)
    {
        var entry = MountTable.FindFuse(mountPoint);
        return entry is { FsType: "fuse.dedupfs" } && File.Exists(Path.Combine(entry.Source, "lock")) ? entry.Source : null;
    }

    /// <summary>Waits until nobody holds the store's lock: the daemon has committed and exited.</summary>
    private static bool WaitForDaemon(string store)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        bool told = false;
        while (clock.Elapsed < TimeSpan.FromMinutes(10))
        {
            try
            {
                // The daemon holds an exclusive flock on STORE/lock until its last commit is done.
                using (new FileStream(Path.Combine(store, "lock"), FileMode.Open, FileAccess.Read, FileShare.None))
                {
                    return true;
                }
            }
            catch (IOException)
            {
            }

            if (!told && clock.Elapsed > TimeSpan.FromSeconds(2))
            {
                Console.Error.WriteLine("dedupfs: waiting for the daemon to commit and exit...");
                told = true;
            }

            Thread.Sleep(50);
        }

        return false;
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
