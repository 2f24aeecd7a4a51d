using System.Runtime.InteropServices;
using System.Text;
using DedupFs.Fuse.Api;
using DedupFs.Fuse.Tests.Support;

namespace DedupFs.Fuse.Tests.Mounting;

/// <summary>Store and retrieve notifications, and the newer opcodes (TMPFILE, STATX) on a real mount.</summary>
public partial class NotifyAndNewOpcodeTests
{
    [Fact]
    public void StorePutsBytesInTheKernelCacheAndRetrieveGetsThemBack()
    {
        using var mount = new TempMount();
        File.WriteAllText(mount["f"], new string('a', 4096));
        // Keep the file open: every OPEN without FOPEN_KEEP_CACHE drops the kernel's cached pages.
        using var stream = new FileStream(mount["f"], FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 1);
        var buffer = new byte[4096];
        Assert.Equal(4096, stream.Read(buffer));
        Assert.Equal(0, mount.FileSystem.Lookup(FuseRequestContext.Create(), NodeId.Root, "f"u8, out var entry));
        var node = new NodeId(entry.NodeId);

        Assert.True(mount.Session.Notifier.Store(node, 0, Encoding.ASCII.GetBytes(new string('b', 4096))));
        Assert.True(mount.Session.Notifier.WaitIdle(TimeSpan.FromSeconds(5)));
        int readsBefore = mount.Memory.Reads;
        stream.Position = 0;
        Assert.Equal(4096, stream.Read(buffer));
        Assert.Equal(new string('b', 4096), Encoding.ASCII.GetString(buffer)); // served from the page cache we filled
        Assert.Equal(readsBefore, mount.Memory.Reads);

        ulong id = mount.Session.Notifier.Retrieve(node, 0, 4096);
        Assert.NotEqual(0ul, id);
        var deadline = DateTime.UtcNow.AddSeconds(5);
        while (DateTime.UtcNow < deadline)
        {
            lock (mount.Memory.Retrieved)
            {
                if (mount.Memory.Retrieved.Count > 0)
                {
                    break;
                }
            }

            Thread.Sleep(10);
        }

        lock (mount.Memory.Retrieved)
        {
            var (unique, retrievedNode, offset, data) = Assert.Single(mount.Memory.Retrieved);
            Assert.Equal(id, unique);
            Assert.Equal(node.Value, retrievedNode);
            Assert.Equal(0, offset);
            Assert.Equal(new string('b', 4096), Encoding.ASCII.GetString(data));
        }
    }

    [Fact]
    public void TmpFileMakesAnUnnamedFileThatCanBeLinkedIn()
    {
        using var mount = new TempMount();
        const int OTmpFile = 0x410000, ORdWr = 2;
        int fd = Open(mount.Path, OTmpFile | ORdWr, 0x1A4);
        Assert.True(fd >= 0, $"open(O_TMPFILE) failed: {Marshal.GetLastPInvokeError()}");
        try
        {
            var bytes = "anonymous"u8.ToArray();
            Assert.Equal(bytes.Length, (int)Write(fd, bytes, bytes.Length));
            Assert.Empty(Directory.GetFiles(mount.Path));
            Assert.Equal(0, LinkAt(-100, $"/proc/self/fd/{fd}", -100, mount["named"], 0x400 /* AT_SYMLINK_FOLLOW */));
        }
        finally
        {
            Close(fd);
        }

        Assert.Equal("anonymous", File.ReadAllText(mount["named"]));
    }

    [Fact]
    public void StatxReportsTheBirthTime()
    {
        using var mount = new TempMount();
        File.WriteAllText(mount["f"], "x");
        // coreutils' stat asks statx(2) for STATX_BTIME, which only FUSE_STATX can answer.
        using var stat = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("stat", ["--format=%W", mount["f"]]) { RedirectStandardOutput = true })!;
        string birth = stat.StandardOutput.ReadToEnd().Trim();
        stat.WaitForExit();
        Assert.Equal("1000000000", birth);
    }

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags, int mode);

    [LibraryImport("libc", EntryPoint = "write", SetLastError = true)]
    private static partial nint Write(int fd, byte[] buffer, nint count);

    [LibraryImport("libc", EntryPoint = "close")]
    private static partial int Close(int fd);

    [LibraryImport("libc", EntryPoint = "linkat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int LinkAt(int olddirfd, string oldpath, int newdirfd, string newpath, int flags);
}
