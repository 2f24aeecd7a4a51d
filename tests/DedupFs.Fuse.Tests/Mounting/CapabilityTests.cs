using System.IO.MemoryMappedFiles;
using System.Text;
using DedupFs.Fuse.Protocol;
using DedupFs.Fuse.TestHost;
using DedupFs.Fuse.Tests.Support;

namespace DedupFs.Fuse.Tests.Mounting;

/// <summary>The optional INIT capabilities a filesystem can ask for, each seen working on a real mount.</summary>
public class CapabilityTests
{
    [Fact]
    public void DirectIoFilesRefuseSharedMmapUnlessAllowed()
    {
        using (var plain = new TempMount(new MemoryFileSystem { DirectIo = true }))
        {
            File.WriteAllBytes(plain["f"], new byte[8192]);
            using var refused = MemoryMappedFile.CreateFromFile(plain["f"], FileMode.Open, null, 0, MemoryMappedFileAccess.ReadWrite);
            Assert.ThrowsAny<IOException>(() => refused.CreateViewAccessor().Dispose()); // mmap: ENODEV
        }

        using var mount = new TempMount(new MemoryFileSystem { DirectIo = true, ExtraCapabilities = InitFlags.DirectIoAllowMmap });
        Assert.True(mount.Memory.Connection!.Has(InitFlags.DirectIoAllowMmap));
        File.WriteAllBytes(mount["f"], new byte[8192]);
        using (var map = MemoryMappedFile.CreateFromFile(mount["f"], FileMode.Open, null, 0, MemoryMappedFileAccess.ReadWrite))
        using (var view = map.CreateViewAccessor())
        {
            view.WriteArray(4100, "shared"u8.ToArray(), 0, 6);
            view.Flush();
        }

        Assert.Equal("shared", Encoding.ASCII.GetString(File.ReadAllBytes(mount["f"]), 4100, 6));
    }

    [Fact]
    public void WritebackCacheDeliversWritesBySync()
    {
        using var mount = new TempMount(new MemoryFileSystem { ExtraCapabilities = InitFlags.WritebackCache });
        Assert.True(mount.Memory.Connection!.Has(InitFlags.WritebackCache));
        using (var stream = new FileStream(mount["w"], FileMode.Create, FileAccess.ReadWrite))
        {
            stream.Write(Encoding.ASCII.GetBytes(new string('x', 100_000)));
            stream.Flush(flushToDisk: true);
        }

        Assert.Equal(100_000, new FileInfo(mount["w"]).Length);
        Assert.Equal(new string('x', 100_000), File.ReadAllText(mount["w"]));
    }

    [Fact]
    public void PosixAndFlockLocksReachTheFilesystem()
    {
        using var mount = new TempMount(new MemoryFileSystem { ExtraCapabilities = InitFlags.PosixLocks | InitFlags.FlockLocks });
        File.WriteAllText(mount["l"], "locked");
        using (var stream = new FileStream(mount["l"], FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite))
        {
            stream.Lock(0, 10);
            stream.Unlock(0, 10);
        }

        using (new FileStream(mount["l"], FileMode.Open, FileAccess.ReadWrite, FileShare.None))
        {
        }

        lock (mount.Memory.Locks)
        {
            Assert.Contains(mount.Memory.Locks, l => !l.Flock && l.Type == 1 /* F_WRLCK */ && l.Start == 0 && l.End == 9);
            Assert.Contains(mount.Memory.Locks, l => !l.Flock && l.Type == 2 /* F_UNLCK */);
            Assert.Contains(mount.Memory.Locks, l => l.Flock);
        }
    }

    [Fact]
    public void PassthroughReadsTheBackingFileWithoutTheDaemon()
    {
        string backingPath = Path.GetTempFileName();
        try
        {
            File.WriteAllText(backingPath, "served by the kernel from the backing file");
            using var backing = File.OpenHandle(backingPath, FileMode.Open, FileAccess.ReadWrite);
            var fs = new MemoryFileSystem
            {
                ExtraCapabilities = InitFlags.Passthrough,
                PassthroughBacking = _ => (int)backing.DangerousGetHandle(),
            };
            using var mount = new TempMount(fs);
            var conn = fs.Connection!;
            if (!conn.Capable.HasFlag(InitFlags.Passthrough))
            {
                // Kernels built without CONFIG_FUSE_PASSTHROUGH do not offer it; nothing to check.
                Assert.False(conn.Has(InitFlags.Passthrough));
                return;
            }

            Assert.True(conn.Has(InitFlags.Passthrough));
            File.WriteAllText(mount["p"], "");
            Assert.Equal("served by the kernel from the backing file", ReadThroughOpen(mount["p"]));
            Assert.Equal(0, fs.Reads);
        }
        finally
        {
            File.Delete(backingPath);
        }
    }

    private static string ReadThroughOpen(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 1);
        var buffer = new byte[4096];
        int n = stream.Read(buffer);
        return Encoding.ASCII.GetString(buffer, 0, n);
    }
}
