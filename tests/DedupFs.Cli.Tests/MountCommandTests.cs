using System.Diagnostics;
using System.Text.Json;
using DedupFs.Cli.Commands;
using DedupFs.Tests.Support;

namespace DedupFs.Cli.Tests;

/// <summary>dedupfs mount / umount / stats / clone / shares, driven as a user drives them.</summary>
public sealed class MountCommandTests
{
    private static byte[] Pattern(int length, int seed)
    {
        var bytes = new byte[length];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }

    [Theory]
    [InlineData("cache=shared")]
    [InlineData("cache=kernel")]
    public void DataSurvivesUmountAndRemount(string options)
    {
        using var mount = new CliMount(options);
        byte[] data = Pattern(3 * 1024 * 1024 + 123, 1);
        File.WriteAllBytes(mount.PathOf("file"), data);
        Directory.CreateDirectory(mount.PathOf("dir/sub"));
        File.WriteAllText(mount.PathOf("dir/sub/note"), "hello");

        mount.Unmount();
        Assert.False(mount.IsMounted);
        // umount returned after the daemon committed and let go of the store: fsck sees it clean.
        Assert.Equal(FsckCommand.Clean, FsckCommand.Run(mount.Store, repair: false, TextWriter.Null, TextWriter.Null));

        mount.Mount();
        Assert.Equal(data, File.ReadAllBytes(mount.PathOf("file")));
        Assert.Equal("hello", File.ReadAllText(mount.PathOf("dir/sub/note")));
    }

    [Fact]
    public void CloneSharesEveryPageAndStatsAndSharesSayHow()
    {
        using var mount = new CliMount();
        byte[] data = Pattern(1024 * 1024, 2);
        File.WriteAllBytes(mount.PathOf("a"), data);
        Directory.CreateDirectory(mount.PathOf("tree/x"));
        File.WriteAllBytes(mount.PathOf("tree/x/b"), data);

        var (exit, _, error) = Dedupfs.Run("clone", mount.PathOf("a"), mount.PathOf("a2"));
        Assert.True(exit == 0, error);
        (exit, _, error) = Dedupfs.Run("clone", mount.PathOf("tree"), mount.PathOf("tree2"));
        Assert.True(exit == 0, error);
        Assert.Equal(data, File.ReadAllBytes(mount.PathOf("a2")));
        Assert.Equal(data, File.ReadAllBytes(mount.PathOf("tree2/x/b")));

        // Four files, one copy of each of their 256 pages.
        var (statsExit, json, statsError) = Dedupfs.Run("stats", mount.MountPoint, "--json");
        Assert.True(statsExit == 0, statsError);
        using (var doc = JsonDocument.Parse(json))
        {
            Assert.Equal(256, doc.RootElement.GetProperty("pages_shared").GetInt64());
            Assert.Equal(3 * 256, doc.RootElement.GetProperty("pages_sharing").GetInt64());
        }

        var (tableExit, table, _) = Dedupfs.Run("stats", mount.MountPoint);
        Assert.Equal(0, tableExit);
        Assert.Contains("pages_sharing", table);

        var (sharesExit, shares, sharesError) = Dedupfs.Run("shares", mount.PathOf("a"), "--json");
        Assert.True(sharesExit == 0, sharesError);
        Assert.Contains("a2", shares);
        Assert.Contains("tree2/x/b", shares);

        // A write to the clone breaks the sharing for the clone only.
        using (var f = new FileStream(mount.PathOf("a2"), FileMode.Open, FileAccess.Write))
        {
            f.Write(new byte[] { 1, 2, 3 });
        }

        Assert.Equal(data, File.ReadAllBytes(mount.PathOf("a")));

        // Cloning onto an existing name is refused and changes nothing.
        var (again, _, againError) = Dedupfs.Run("clone", mount.PathOf("a"), mount.PathOf("tree"));
        Assert.NotEqual(0, again);
        Assert.Contains("exists", againError);
        Assert.True(File.Exists(mount.PathOf("tree/x/b")));
    }

    [Fact]
    public void BadOptionsAreOneLineAndStartNothing()
    {
        string root = Directory.CreateTempSubdirectory("dedupfs-cli-bad-").FullName;
        try
        {
            foreach (string bad in new[] { "cache=fast", "inline_dedup=maybe", "cache_size=12Q", "commit=-1", "frobnicate",
                         "mergeable=maybe", "ksm_run=3", "max_page_sharing=1", "pages_to_scan=many", "use_zero_pages=2", "run=1" })
            {
                var (exit, output, error) = Dedupfs.Run("mount", "--store", Path.Combine(root, "s"), Path.Combine(root, "m"), "-o", bad);
                Assert.Equal(2, exit);
                Assert.Equal("", output);
                Assert.StartsWith("dedupfs: mount:", error);
                Assert.Single(error.TrimEnd().Split('\n'));
            }

            Assert.False(Directory.Exists(Path.Combine(root, "m")));
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    [Fact]
    public void AStoreInUseAndAMountedMountPointAreRefused()
    {
        using var mount = new CliMount();
        string other = Path.Combine(Path.GetDirectoryName(mount.Store)!, "other");

        var (exit, _, error) = Dedupfs.Run("mount", "--store", mount.Store, other);
        Assert.Equal(1, exit);
        Assert.Contains("in use", error);
        Assert.False(Fuse.Mounting.MountTable.IsFuseMount(other));

        (exit, _, error) = Dedupfs.Run("mount", "--store", Path.Combine(other, "store"), mount.MountPoint);
        Assert.Equal(1, exit);
        Assert.Contains("already", error);
    }

    [Fact]
    public void TheMountFuse3FormMountsToo()
    {
        using var mount = new CliMount();
        mount.Unmount();
        // mount.fuse3 runs "dedupfs STORE MNT -o OPTIONS" for an fstab line.
        var (exit, _, error) = Dedupfs.Run(mount.Store, mount.MountPoint, "-o", "rw,nosuid,nodev,cache=kernel");
        Assert.True(exit == 0, error);
        Assert.True(mount.IsMounted);
        File.WriteAllText(mount.PathOf("f"), "x");
        Assert.Equal("x", File.ReadAllText(mount.PathOf("f")));
    }

    [Fact]
    public void AKilledDaemonKeepsWhatWasSyncedAndUmountCleansUp()
    {
        using var mount = new CliMount("commit=3600");
        byte[] synced = Pattern(512 * 1024, 3);
        using (var f = new FileStream(mount.PathOf("synced"), FileMode.CreateNew, FileAccess.Write))
        {
            f.Write(synced);
            f.Flush(flushToDisk: true);   // fsync: the durability point
        }

        File.WriteAllBytes(mount.PathOf("unsynced"), Pattern(4096, 4));
        using (var daemon = Process.GetProcessById(mount.DaemonPid))
        {
            daemon.Kill();
            Assert.True(daemon.WaitForExit(TimeSpan.FromSeconds(30)));
        }

        var (exit, _, error) = Dedupfs.Run("umount", mount.MountPoint);
        Assert.True(exit == 0, error);
        Assert.Contains("daemon was gone", error);
        Assert.False(mount.IsMounted);

        mount.Mount();
        Assert.Equal(synced, File.ReadAllBytes(mount.PathOf("synced")));
        mount.Unmount();
        Assert.Equal(FsckCommand.Clean, FsckCommand.Run(mount.Store, repair: false, TextWriter.Null, TextWriter.Null));
    }
}
