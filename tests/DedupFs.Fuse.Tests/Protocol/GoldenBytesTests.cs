using DedupFs.Fuse.Api;
using DedupFs.Fuse.Protocol;
using DedupFs.Fuse.Session;
using DedupFs.Fuse.TestHost;

namespace DedupFs.Fuse.Tests.Protocol;

/// <summary>Requests written byte by byte as the kernel sends them (x86-64, little endian), and the exact replies.</summary>
public class GoldenBytesTests
{
    private static readonly byte[] Init =
    [
        0x68, 0x00, 0x00, 0x00, // len = 104 (40 header + 64 fuse_init_in)
        0x1A, 0x00, 0x00, 0x00, // opcode = 26 (INIT)
        0x02, 0, 0, 0, 0, 0, 0, 0, // unique = 2
        0, 0, 0, 0, 0, 0, 0, 0, // nodeid = 0
        0, 0, 0, 0, 0, 0, 0, 0, // uid, gid
        0x10, 0x00, 0x00, 0x00, // pid = 16
        0, 0, 0, 0, // total_extlen, padding
        0x07, 0x00, 0x00, 0x00, // major = 7
        0x2D, 0x00, 0x00, 0x00, // minor = 45
        0x00, 0x00, 0x02, 0x00, // max_readahead = 131072
        0xFF, 0xFF, 0xFF, 0x7F, // flags: everything below INIT_RESERVED, INIT_EXT included
        0xFF, 0x07, 0x00, 0x00, // flags2: bits 32..42
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // unused[11]
    ];

    private static readonly byte[] LookupMissing =
    [
        0x2E, 0x00, 0x00, 0x00, // len = 46
        0x01, 0x00, 0x00, 0x00, // opcode = 1 (LOOKUP)
        0x2A, 0x01, 0, 0, 0, 0, 0, 0, // unique = 298
        0x01, 0, 0, 0, 0, 0, 0, 0, // nodeid = 1 (root)
        0xE8, 0x03, 0, 0, 0xE8, 0x03, 0, 0, // uid = gid = 1000
        0x39, 0x30, 0x00, 0x00, // pid = 12345
        0, 0, 0, 0, // total_extlen, padding
        (byte)'n', (byte)'o', (byte)'p', (byte)'e', (byte)'!', 0, // name "nope!" and its NUL
    ];

    private static readonly byte[] EnoentReply =
    [
        0x10, 0x00, 0x00, 0x00, // len = 16
        0xFE, 0xFF, 0xFF, 0xFF, // error = -2 (ENOENT)
        0x2A, 0x01, 0, 0, 0, 0, 0, 0, // unique = 298
    ];

    private static readonly byte[] ReadZero =
    [
        0x50, 0x00, 0x00, 0x00, // len = 80 (40 + fuse_read_in)
        0x0F, 0x00, 0x00, 0x00, // opcode = 15 (READ)
        0x2B, 0x01, 0, 0, 0, 0, 0, 0, // unique = 299
        0x02, 0, 0, 0, 0, 0, 0, 0, // nodeid = 2 ("zero")
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // uid, gid, pid, extlen
        0, 0, 0, 0, 0, 0, 0, 0, // fh = 0
        0xF8, 0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x00, // offset = 1 TiB - 8
        0x00, 0x10, 0x00, 0x00, // size = 4096
        0, 0, 0, 0, // read_flags
        0, 0, 0, 0, 0, 0, 0, 0, // lock_owner
        0x02, 0x80, 0x00, 0x00, // flags = O_RDWR | O_LARGEFILE
        0, 0, 0, 0, // padding
    ];

    [Fact]
    public void LookupOfAMissingNameAnswersExactlyEnoent()
    {
        var dispatcher = new FuseDispatcher(new NullFileSystem());
        var reply = new byte[8192];
        Assert.Equal(80, dispatcher.Handle(Init, reply));
        var initOut = System.Runtime.InteropServices.MemoryMarshal.Read<FuseInitOut>(reply.AsSpan(16));
        Assert.Equal(45u, initOut.Minor);
        Assert.Equal(16, dispatcher.Handle(LookupMissing, reply));
        Assert.Equal(EnoentReply, reply.AsSpan(0, 16).ToArray());
    }

    [Fact]
    public void ReadAtTheEndOfTheZeroFileAnswersItsLastEightBytes()
    {
        var dispatcher = new FuseDispatcher(new NullFileSystem());
        var reply = new byte[8192];
        Array.Fill(reply, (byte)0xAA);
        dispatcher.Handle(Init, reply);
        Assert.Equal(24, dispatcher.Handle(ReadZero, reply));
        byte[] expected = [0x18, 0, 0, 0, 0, 0, 0, 0, 0x2B, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        Assert.Equal(expected, reply.AsSpan(0, 24).ToArray());
    }

    [Fact]
    public void EveryTruncationOfAGoldenRequestIsAnsweredOrDroppedNeverThrown()
    {
        var dispatcher = new FuseDispatcher(new NullFileSystem(), new FuseSessionOptions { Logger = new SilentLogger() });
        var reply = new byte[8192];
        dispatcher.Handle(Init, reply);
        foreach (var request in new[] { LookupMissing, ReadZero })
        {
            for (int cut = 0; cut < request.Length; cut++)
            {
                int length = dispatcher.Handle(request.AsSpan(0, cut), reply);
                if (cut >= 40)
                {
                    Assert.Equal(16, length); // header intact: EIO with the request's unique id
                    Assert.Equal(-Errno.EIO, BitConverter.ToInt32(reply, 4));
                }
                else
                {
                    Assert.Equal(0, length);
                }
            }
        }
    }

    private sealed class SilentLogger : IFuseLogger
    {
        public void Log(FuseLogLevel level, string message)
        {
        }
    }
}
