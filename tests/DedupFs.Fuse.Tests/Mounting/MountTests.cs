using System.Diagnostics;
using System.IO.MemoryMappedFiles;
using System.Text;
using DedupFs.Fuse.Api;
using DedupFs.Fuse.Mounting;
using DedupFs.Fuse.Tests.Support;
using DedupFs.Tests.Support;

namespace DedupFs.Fuse.Tests.Mounting;

/// <summary>A test filesystem mounted for real and driven with ordinary system calls.</summary>
public class MountTests
{
    [Fact]
    public void MountAppearsInTheMountTableAndUnmountEndsTheSession()
    {
        var mount = new TempMount();
        try
        {
            var entry = MountTable.FindFuse(mount.Path);
            Assert.NotNull(entry);
            Assert.Equal("fuse.dedupfs", entry!.FsType);
            Assert.Equal("dedupfs-test", entry.Source);
            Assert.True(mount.Memory.Connection!.ProtocolMinor >= 31);
            Assert.True(mount.Memory.Connection.Want.HasFlag(global::DedupFs.Fuse.Protocol.InitFlags.MaxPages));

            Assert.True(mount.Session.Unmount());
            Assert.True(mount.Session.WaitForExit(TimeSpan.FromSeconds(10)), "workers did not stop after unmount");
            Assert.False(MountTable.IsFuseMount(mount.Path));
            Assert.True(mount.Memory.Destroyed);
        }
        finally
        {
            mount.Dispose();
        }
    }

    [Fact]
    public void StatReadDirAndMetadata()
    {
        using var mount = new TempMount();
        Directory.CreateDirectory(mount["dir/sub"]);
        File.WriteAllText(mount["dir/a.txt"], "alpha");
        File.WriteAllText(mount["dir/b.txt"], "bravo!");
        var names = Directory.EnumerateFileSystemEntries(mount["dir"]).Select(Path.GetFileName).Order().ToArray();
        Assert.Equal(new[] { "a.txt", "b.txt", "sub" }, names);
        Assert.Equal(6, new FileInfo(mount["dir/b.txt"]).Length);
        File.SetUnixFileMode(mount["dir/a.txt"], UnixFileMode.UserRead | UnixFileMode.UserWrite);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(mount["dir/a.txt"]));
        var when = new DateTime(2001, 2, 3, 4, 5, 6, DateTimeKind.Utc);
        File.SetLastWriteTimeUtc(mount["dir/a.txt"], when);
        Assert.Equal(when, File.GetLastWriteTimeUtc(mount["dir/a.txt"]));
        Assert.True(Directory.Exists(mount["dir/sub"]));
        Assert.Throws<IOException>(() => Directory.Delete(mount["dir"]));
        Directory.Delete(mount["dir"], recursive: true);
        Assert.False(Directory.Exists(mount["dir"]));
        var drive = new DriveInfo(mount.Path);
        Assert.True(drive.TotalSize > 0);
    }

    [Fact]
    public void ReadWriteLargeAndPartialIo()
    {
        using var mount = new TempMount();
        var data = new byte[3 * 1024 * 1024 + 123];
        new Random(7).NextBytes(data);
        File.WriteAllBytes(mount["big"], data);
        Assert.Equal(data, File.ReadAllBytes(mount["big"]));

        using (var stream = new FileStream(mount["big"], FileMode.Open, FileAccess.ReadWrite))
        {
            stream.Position = 4000;
            stream.Write("PATCH"u8);
            stream.SetLength(10000);
        }

        "PATCH"u8.CopyTo(data.AsSpan(4000));
        Assert.Equal(data.AsSpan(0, 10000).ToArray(), File.ReadAllBytes(mount["big"]));

        File.AppendAllText(mount["log"], "one\n");
        File.AppendAllText(mount["log"], "two\n");
        Assert.Equal("one\ntwo\n", File.ReadAllText(mount["log"]));

        using (new FileStream(mount["log"], FileMode.Truncate))
        {
        }

        Assert.Equal(0, new FileInfo(mount["log"]).Length);
    }

    [Fact]
    public void CreateExclusiveRefusesAnExistingName()
    {
        using var mount = new TempMount();
        using (new FileStream(mount["x"], FileMode.CreateNew))
        {
        }

        Assert.Throws<IOException>(() => new FileStream(mount["x"], FileMode.CreateNew));
    }

    [Fact]
    public void RenameWithFlags()
    {
        using var mount = new TempMount();
        File.WriteAllText(mount["a"], "A");
        File.WriteAllText(mount["b"], "B");
        Assert.Equal(Errno.EEXIST, Posix.Rename2(mount["a"], mount["b"], Posix.RenameNoReplace));
        Assert.Equal(0, Posix.Rename2(mount["a"], mount["b"], Posix.RenameExchange));
        Assert.Equal("B", File.ReadAllText(mount["a"]));
        Assert.Equal("A", File.ReadAllText(mount["b"]));
        File.Move(mount["a"], mount["b"], overwrite: true);
        Assert.False(File.Exists(mount["a"]));
        Assert.Equal("B", File.ReadAllText(mount["b"]));
        Directory.CreateDirectory(mount["d"]);
        File.Move(mount["b"], mount["d/moved"]);
        Assert.Equal("B", File.ReadAllText(mount["d/moved"]));
    }

    [Fact]
    public void SymlinksAndHardLinks()
    {
        using var mount = new TempMount();
        File.WriteAllText(mount["target"], "data");
        File.CreateSymbolicLink(mount["link"], "target");
        Assert.Equal("target", new FileInfo(mount["link"]).LinkTarget);
        Assert.Equal("data", File.ReadAllText(mount["link"]));
        var ln = Process.Start("ln", [mount["target"], mount["hard"]])!;
        ln.WaitForExit();
        Assert.Equal(0, ln.ExitCode);
        File.AppendAllText(mount["hard"], "+");
        Assert.Equal("data+", File.ReadAllText(mount["target"]));
        File.Delete(mount["target"]);
        Assert.Equal("data+", File.ReadAllText(mount["hard"]));
    }

    [Fact]
    public void ExtendedAttributes()
    {
        using var mount = new TempMount();
        File.WriteAllText(mount["f"], "");
        Assert.Equal(0, Posix.SetXattr(mount["f"], "user.one", "1"u8.ToArray()));
        Assert.Equal(0, Posix.SetXattr(mount["f"], "user.big", new byte[5000]));
        Assert.Equal("1"u8.ToArray(), Posix.GetXattr(mount["f"], "user.one", out _));
        Assert.Equal(5000, Posix.GetXattr(mount["f"], "user.big", out _)!.Length);
        Assert.Equal(new[] { "user.big", "user.one" }, Posix.ListXattr(mount["f"]).Order());
        Assert.Equal(Errno.EEXIST, Posix.SetXattr(mount["f"], "user.one", "2"u8.ToArray(), flags: 1));
        Assert.Equal(0, Posix.RemoveXattr(mount["f"], "user.one"));
        Assert.Null(Posix.GetXattr(mount["f"], "user.one", out int errno));
        Assert.Equal(Errno.ENODATA, errno);
    }

    [Fact]
    public void MmapSharedWritesReachTheFilesystem()
    {
        using var mount = new TempMount();
        File.WriteAllBytes(mount["m"], new byte[3 * 4096]);
        using (var map = MemoryMappedFile.CreateFromFile(mount["m"], FileMode.Open, null, 0, MemoryMappedFileAccess.ReadWrite))
        using (var view = map.CreateViewAccessor())
        {
            view.WriteArray(5000, "mapped"u8.ToArray(), 0, 6);
            view.Flush();
            Assert.Equal((byte)'m', view.ReadByte(5000));
        }

        var bytes = File.ReadAllBytes(mount["m"]);
        Assert.Equal("mapped", Encoding.ASCII.GetString(bytes, 5000, 6));
    }

    [Fact]
    public void CopyFileRangeReachesTheFilesystem()
    {
        using var mount = new TempMount();
        var data = Enumerable.Range(0, 100000).Select(i => (byte)(i * 7)).ToArray();
        File.WriteAllBytes(mount["src"], data);
        using (var source = File.OpenHandle(mount["src"]))
        using (var target = File.OpenHandle(mount["dst"], FileMode.Create, FileAccess.Write))
        {
            long copied = Posix.CopyFileRange(source, 0, target, 0, data.Length);
            Assert.Equal(data.Length, copied);
        }

        Assert.True(mount.Memory.CopyFileRangeCalls > 0);
        Assert.Equal(data, File.ReadAllBytes(mount["dst"]));
    }

    [Fact]
    public void ParallelClientsOnSeveralWorkers()
    {
        using var mount = new TempMount(workers: 4);
        var threads = Enumerable.Range(0, 8).Select(t => new Thread(() =>
        {
            var data = new byte[300_000];
            new Random(t).NextBytes(data);
            for (int i = 0; i < 5; i++)
            {
                File.WriteAllBytes(mount[$"p{t}"], data);
                Assert.Equal(data, File.ReadAllBytes(mount[$"p{t}"]));
            }
        })).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => Assert.True(t.Join(TimeSpan.FromSeconds(60))));
        Assert.Equal(8, Directory.GetFiles(mount.Path, "p*").Length);
    }

    [Fact]
    public void LookupCountsReturnToZeroWhenTheKernelForgets()
    {
        using var mount = new TempMount();
        Directory.CreateDirectory(mount["d"]);
        for (int i = 0; i < 20; i++)
        {
            File.WriteAllText(mount[$"d/f{i}"], "x");
        }

        _ = Directory.GetFiles(mount["d"]).Select(f => new FileInfo(f).Length).ToArray(); // READDIRPLUS and LOOKUPs
        File.Delete(mount["d/f0"]);
        Assert.True(mount.Memory.Lookups.LiveNodes > 0);

        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (mount.Memory.Lookups.LiveNodes > 0 && DateTime.UtcNow < deadline)
        {
            TempMount.DropCaches();
            Thread.Sleep(100);
        }

        Assert.Equal(0, mount.Memory.Lookups.LiveNodes);
        Assert.Equal(1 + 1 + 19, mount.Memory.NodeCount); // root, d and the 19 files left: the unlinked one was freed
    }

    [Fact]
    public void InterruptedReadReturnsWhenTheCallerIsSignalled()
    {
        using var mount = new TempMount();
        mount.Memory.AddSlowFile("slow");
        using var cat = Process.Start(new ProcessStartInfo("cat", mount["slow"]) { RedirectStandardOutput = true, RedirectStandardError = true })!;
        Thread.Sleep(500); // let the READ reach the filesystem
        Assert.False(cat.HasExited);
        Assert.Equal(0, Posix.Kill(cat.Id, Posix.SigInt));
        Assert.True(cat.WaitForExit(10_000), "cat stayed blocked after SIGINT");
        var deadline = DateTime.UtcNow.AddSeconds(5);
        while (mount.Memory.Interrupts == 0 && DateTime.UtcNow < deadline)
        {
            Thread.Sleep(10);
        }

        Assert.Equal(1, mount.Memory.Interrupts);
    }

    [Fact]
    public void EntryInvalidationReachesTheKernel()
    {
        using var mount = new TempMount();
        File.WriteAllText(mount["old"], "x");
        Assert.True(File.Exists(mount["old"])); // the kernel now caches the entry for 1 s

        // Rename behind the kernel's back, then tell it.
        var ctx = FuseRequestContext.Create();
        Assert.Equal(0, mount.FileSystem.Rename(ctx, NodeId.Root, "old"u8, NodeId.Root, "new"u8, 0));
        Assert.True(mount.Session.Notifier.InvalidateEntry(NodeId.Root, "old"u8));
        Assert.True(mount.Session.Notifier.WaitIdle(TimeSpan.FromSeconds(5)));
        Assert.False(File.Exists(mount["old"]));
        Assert.True(File.Exists(mount["new"]));
    }

    [Fact]
    public void InodeInvalidationDropsCachedData()
    {
        using var mount = new TempMount();
        File.WriteAllText(mount["f"], "before");
        Assert.Equal("before", File.ReadAllText(mount["f"])); // now in the kernel's page cache
        Assert.Equal(0, mount.FileSystem.Lookup(FuseRequestContext.Create(), NodeId.Root, "f"u8, out var entry));
        Assert.Equal(0, mount.FileSystem.Write(FuseRequestContext.Create(), new NodeId(entry.NodeId), default, 0, "AFTER!"u8, 0, out _));
        Assert.True(mount.Session.Notifier.InvalidateInode(new NodeId(entry.NodeId)));
        Assert.True(mount.Session.Notifier.WaitIdle(TimeSpan.FromSeconds(5)));
        Assert.Equal("AFTER!", File.ReadAllText(mount["f"]));
    }

    [Fact]
    public void MountAndUnmountThroughFusermount()
    {
        var mount = new TempMount(method: MountMethod.Fusermount);
        try
        {
            File.WriteAllText(mount["f"], "via fusermount3");
            Assert.Equal("via fusermount3", File.ReadAllText(mount["f"]));
            Assert.True(FuseMounter.Unmount(mount.Path, method: MountMethod.Fusermount));
            Assert.True(mount.Session.WaitForExit(TimeSpan.FromSeconds(10)));
            Assert.False(MountTable.IsFuseMount(mount.Path));
        }
        finally
        {
            mount.Dispose();
        }
    }

    [Fact]
    public void ScatteredRepliesKeepDataAndHolesInOrder()
    {
        using var mount = new TempMount();
        var data = new byte[20 * 4096 + 100];
        var random = new Random(3);
        for (int page = 0; page < 21; page += 2)
        {
            random.NextBytes(data.AsSpan(page * 4096, Math.Min(4096, data.Length - page * 4096)));
        }

        data[7 * 4096 + 5] = 9; // a lone byte in an otherwise zero page
        File.WriteAllBytes(mount["sparse"], data);
        Assert.Equal(data, File.ReadAllBytes(mount["sparse"]));
        using var stream = new FileStream(mount["sparse"], FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.None);
        var part = new byte[3 * 4096];
        stream.Position = 4096 + 77;
        Assert.Equal(part.Length, stream.Read(part));
        Assert.Equal(data.AsSpan(4096 + 77, part.Length).ToArray(), part);
    }

    [Fact]
    public void NullFileSystemServesZerosThroughScatteredReplies()
    {
        using var mount = new TempMount(new TestHost.NullFileSystem());
        Assert.Equal(1L << 40, new FileInfo(mount["zero"]).Length);
        using var stream = new FileStream(mount["zero"], FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite, 1);
        var buffer = new byte[1 << 20];
        Array.Fill(buffer, (byte)0xFF);
        stream.Position = (1L << 40) - 1000;
        Assert.Equal(1000, stream.Read(buffer));
        Assert.All(buffer.AsSpan(0, 1000).ToArray(), b => Assert.Equal(0, b));
        Assert.Equal(0xFF, buffer[1000]);
        stream.Position = 0;
        stream.Write(buffer);
    }

    [Theory]
    [InlineData(MountMethod.Syscall)]
    [InlineData(MountMethod.Fusermount)]
    public void ReadOnlyAllowOtherAndDefaultPermissionsReachTheKernel(MountMethod method)
    {
        using var mount = new TempMount(options: path => new FuseMountOptions
        {
            MountPoint = path, FsName = "opts-test", Subtype = "optstest", ReadOnly = true, AllowOther = true, DefaultPermissions = true, Method = method,
        });
        var line = File.ReadAllLines("/proc/self/mounts").Single(l => l.Split(' ')[1] == mount.Path);
        var fields = line.Split(' ');
        Assert.Equal("opts-test", fields[0]);
        Assert.Equal("fuse.optstest", fields[2]);
        var options = fields[3].Split(',');
        Assert.Contains("ro", options);
        Assert.Contains("nosuid", options);
        Assert.Contains("nodev", options);
        Assert.Contains("allow_other", options);
        Assert.Contains("default_permissions", options);
        var error = Assert.ThrowsAny<IOException>(() => File.WriteAllText(mount["nope"], "x"));
        Assert.Contains("Read-only", error.Message, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public void AccessFollowsTheModeBitsAndOversizeIsEfbig()
    {
        using var mount = new TempMount();
        File.WriteAllText(mount["f"], "x");
        File.SetUnixFileMode(mount["f"], UnixFileMode.UserRead | UnixFileMode.UserWrite);
        using (var test = Process.Start("test", ["-x", mount["f"]])!)
        {
            test.WaitForExit();
            Assert.Equal(1, test.ExitCode); // even root may not execute a file with no x bit
        }

        using var truncate = Process.Start(new ProcessStartInfo("truncate", ["-s", "3G", mount["f"]]) { RedirectStandardError = true })!;
        string stderr = truncate.StandardError.ReadToEnd();
        truncate.WaitForExit();
        Assert.NotEqual(0, truncate.ExitCode);
        Assert.Contains("File too large", stderr); // EFBIG from the filesystem, carried through SETATTR
    }
}
