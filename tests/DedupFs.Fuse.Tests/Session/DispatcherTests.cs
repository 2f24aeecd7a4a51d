using System.Runtime.InteropServices;
using DedupFs.Fuse.Api;
using DedupFs.Fuse.Protocol;
using DedupFs.Fuse.Session;
using DedupFs.Fuse.TestHost;
using DedupFs.Fuse.Tests.Support;

namespace DedupFs.Fuse.Tests.Session;

/// <summary>The whole protocol driven through the device-free entry point: bytes in, bytes out.</summary>
public class DispatcherTests
{
    private readonly MemoryFileSystem _fs = new();
    private readonly RecordingLogger _log = new();
    private readonly FuseDispatcher _dispatcher;
    private readonly byte[] _reply = new byte[(1 << 20) + 4096];

    public DispatcherTests()
    {
        _dispatcher = new FuseDispatcher(_fs, new FuseSessionOptions { Logger = _log });
    }

    private Reply Send(byte[] request)
    {
        int length = _dispatcher.Handle(request, _reply);
        return new Reply(_reply.AsSpan(0, length).ToArray(), length);
    }

    /// <summary>INIT as a 7.45 kernel with MAX_PAGES (256) sends it.</summary>
    private Reply Init(uint minor = 45, InitFlags offered = (InitFlags)0xFFFF_FFFF_FFFF)
    {
        var init = new FuseInitIn
        {
            Major = 7,
            Minor = minor,
            MaxReadahead = 131072,
            Flags = (uint)((ulong)offered & 0xFFFF_FFFF),
            Flags2 = (uint)((ulong)offered >> 32),
        };
        return Send(new RequestBuilder(FuseOpcode.Init, nodeId: 0, unique: 2).Struct(init).Build());
    }

    [Fact]
    public void InitNegotiatesVersionSizesAndCapabilities()
    {
        var reply = Init();
        Assert.Equal(0, reply.Error);
        Assert.Equal(16 + 64, reply.Length);
        Assert.Equal(2ul, reply.Header.Unique);
        var output = reply.As<FuseInitOut>();
        Assert.Equal(7u, output.Major);
        Assert.Equal(45u, output.Minor);
        Assert.Equal(1u << 20, output.MaxWrite);
        Assert.Equal((ushort)256, output.MaxPages);
        var granted = (InitFlags)(output.Flags | ((ulong)output.Flags2 << 32));
        foreach (var wanted in new[] { InitFlags.AsyncRead, InitFlags.MaxPages, InitFlags.ParallelDirOps, InitFlags.DoReadDirPlus,
                     InitFlags.ReadDirPlusAuto, InitFlags.AtomicOTrunc, InitFlags.AsyncDio, InitFlags.AutoInvalData })
        {
            Assert.True(granted.HasFlag(wanted), wanted.ToString());
        }

        // Optional capabilities are off unless the filesystem asks.
        Assert.False(granted.HasFlag(InitFlags.WritebackCache));
        Assert.False(granted.HasFlag(InitFlags.Passthrough));
        Assert.True(_dispatcher.IsInitialized);
        Assert.Same(_fs.Connection, _dispatcher.Connection);
    }

    [Fact]
    public void InitNeverGrantsWhatTheKernelDidNotOffer()
    {
        var fs = new WantingFileSystem(InitFlags.WritebackCache | InitFlags.Passthrough | InitFlags.DirectIoAllowMmap);
        var dispatcher = new FuseDispatcher(fs);
        var init = new FuseInitIn { Major = 7, Minor = 45, Flags = (uint)(InitFlags.AsyncRead | InitFlags.InitExt), Flags2 = (uint)((ulong)InitFlags.DirectIoAllowMmap >> 32) };
        int length = dispatcher.Handle(new RequestBuilder(FuseOpcode.Init, 0).Struct(init).Build(), _reply);
        var output = MemoryMarshal.Read<FuseInitOut>(_reply.AsSpan(16));
        var granted = (InitFlags)(output.Flags | ((ulong)output.Flags2 << 32));
        Assert.Equal(80, length);
        Assert.True(granted.HasFlag(InitFlags.DirectIoAllowMmap));
        Assert.True(granted.HasFlag(InitFlags.AsyncRead));
        Assert.False(granted.HasFlag(InitFlags.WritebackCache));
        Assert.False(granted.HasFlag(InitFlags.Passthrough));
        Assert.False(granted.HasFlag(InitFlags.ParallelDirOps));
    }

    [Fact]
    public void InitFromANewerMajorAnswersOurVersionOnly()
    {
        var reply = Send(new RequestBuilder(FuseOpcode.Init, 0).Struct(new FuseInitIn { Major = 8, Minor = 0 }).Build());
        Assert.Equal(0, reply.Error);
        Assert.Equal(7u, reply.As<FuseInitOut>().Major);
        Assert.False(_dispatcher.IsInitialized);
    }

    [Fact]
    public void InitFromAnAncientKernelIsRefused()
    {
        Assert.Equal(Errno.EPROTO, Init(minor: 20).Error);
        Assert.False(_dispatcher.IsInitialized);
    }

    [Fact]
    public void RequestsBeforeInitGetEio()
    {
        var reply = Send(new RequestBuilder(FuseOpcode.Lookup).Name("x").Build());
        Assert.Equal(Errno.EIO, reply.Error);
        Assert.Equal(7ul, reply.Header.Unique);
    }

    [Fact]
    public void LookupRoundTripCountsOneReference()
    {
        Init();
        Assert.Equal(0, Send(new RequestBuilder(FuseOpcode.MkDir).Struct(new FuseMkDirIn { Mode = 0x1ED }).Name("dir").Build()).Error);
        var reply = Send(new RequestBuilder(FuseOpcode.Lookup, unique: 99).Name("dir").Build());
        Assert.Equal(0, reply.Error);
        Assert.Equal(99ul, reply.Header.Unique);
        Assert.Equal(16 + 128, reply.Length);
        var entry = reply.As<FuseEntryOut>();
        Assert.Equal(0x4000u, entry.Attr.Mode & 0xF000);
        Assert.Equal(2, _fs.Lookups[new NodeId(entry.NodeId)]); // MKDIR + LOOKUP
        Send(new RequestBuilder(FuseOpcode.Forget, entry.NodeId).Struct(new FuseForgetIn { NLookup = 2 }).Build());
        Assert.Equal(0, _fs.Lookups[new NodeId(entry.NodeId)]);
    }

    [Fact]
    public void MissingNameIsEnoent()
    {
        Init();
        Assert.Equal(Errno.ENOENT, Send(new RequestBuilder(FuseOpcode.Lookup).Name("nothing").Build()).Error);
    }

    [Fact]
    public void UnknownOpcodeGetsEnosysAndALogLine()
    {
        Init();
        var bytes = new RequestBuilder(FuseOpcode.Lookup, unique: 5).Name("x").Build();
        bytes[4] = 200;
        var reply = Send(bytes);
        Assert.Equal(Errno.ENOSYS, reply.Error);
        Assert.Equal(5ul, reply.Header.Unique);
        Assert.Contains(_log.Lines, l => l.Contains("unknown opcode 200"));
    }

    [Fact]
    public void UnimplementedOperationsAnswerEnosys()
    {
        var dispatcher = new FuseDispatcher(new EmptyFileSystem());
        dispatcher.Handle(new RequestBuilder(FuseOpcode.Init, 0).Struct(new FuseInitIn { Major = 7, Minor = 45 }).Build(), _reply);
        foreach (var request in new[]
                 {
                     new RequestBuilder(FuseOpcode.Lookup).Name("a").Build(),
                     new RequestBuilder(FuseOpcode.GetAttr).Struct(new FuseGetAttrIn()).Build(),
                     new RequestBuilder(FuseOpcode.Read).Struct(new FuseReadIn { Size = 10 }).Build(),
                     new RequestBuilder(FuseOpcode.Ioctl).Struct(new FuseIoctlIn()).Build(),
                     new RequestBuilder(FuseOpcode.StatX).Struct(new FuseStatxIn()).Build(),
                     new RequestBuilder(FuseOpcode.CopyFileRange64).Struct(new FuseCopyFileRangeIn { NodeIdOut = 1 }).Build(),
                 })
        {
            int length = dispatcher.Handle(request, _reply);
            Assert.Equal(16, length);
            Assert.Equal(-Errno.ENOSYS, MemoryMarshal.Read<FuseOutHeader>(_reply).Error);
        }

        // FORGET has no reply, even unimplemented.
        Assert.Equal(0, dispatcher.Handle(new RequestBuilder(FuseOpcode.Forget).Struct(new FuseForgetIn { NLookup = 1 }).Build(), _reply));
    }

    [Fact]
    public void TruncatedRequestsGetEioWithTheirUniqueId()
    {
        Init();
        var full = new RequestBuilder(FuseOpcode.Read, unique: 31).Struct(new FuseReadIn { Size = 4096 }).Build();
        for (int cut = 41; cut < full.Length; cut++)
        {
            var truncated = full.AsSpan(0, cut).ToArray();
            BitConverter.GetBytes((uint)cut).CopyTo(truncated, 0); // a consistent but too-short request
            var reply = Send(truncated);
            Assert.Equal(Errno.EIO, reply.Error);
            Assert.Equal(31ul, reply.Header.Unique);
        }
    }

    [Fact]
    public void LengthFieldDisagreeingWithTheBytesIsMalformed()
    {
        Init();
        var bytes = new RequestBuilder(FuseOpcode.Lookup, unique: 12).Name("x").Build();
        BitConverter.GetBytes((uint)bytes.Length + 100).CopyTo(bytes, 0);
        var reply = Send(bytes);
        Assert.Equal(Errno.EIO, reply.Error);
        Assert.Equal(12ul, reply.Header.Unique);
    }

    [Fact]
    public void NameWithoutNulIsMalformed()
    {
        Init();
        var bytes = new RequestBuilder(FuseOpcode.Lookup).Bytes("abc"u8).Build();
        Assert.Equal(Errno.EIO, Send(bytes).Error);
    }

    [Fact]
    public void ShortHeaderIsDroppedAndLogged()
    {
        Assert.Equal(0, _dispatcher.Handle(new byte[20], _reply));
        Assert.Contains(_log.Lines, l => l.Contains("shorter than fuse_in_header"));
    }

    [Fact]
    public void MalformedForgetIsDroppedWithoutReply()
    {
        Init();
        var bytes = new RequestBuilder(FuseOpcode.Forget).Bytes([1, 2, 3]).Build();
        Assert.Equal(0, _dispatcher.Handle(bytes, _reply));
        Assert.Contains(_log.Lines, l => l.Contains("FORGET") && l.Contains("dropped"));
    }

    [Fact]
    public void ExceptionInTheFilesystemBecomesEio()
    {
        var dispatcher = new FuseDispatcher(new ThrowingFileSystem(), new FuseSessionOptions { Logger = _log });
        dispatcher.Handle(new RequestBuilder(FuseOpcode.Init, 0).Struct(new FuseInitIn { Major = 7, Minor = 45 }).Build(), _reply);
        int length = dispatcher.Handle(new RequestBuilder(FuseOpcode.Lookup, unique: 77).Name("boom").Build(), _reply);
        Assert.Equal(16, length);
        Assert.Equal(-Errno.EIO, MemoryMarshal.Read<FuseOutHeader>(_reply).Error);
        Assert.Contains(_log.Lines, l => l.Contains("LOOKUP") && l.Contains("boom"));
    }

    [Fact]
    public void WriteThenReadRoundTripsData()
    {
        Init();
        var create = Send(new RequestBuilder(FuseOpcode.Create).Struct(new FuseCreateIn { Mode = 0x81A4, Flags = 2 }).Name("f").Build());
        Assert.Equal(0, create.Error);
        Assert.Equal(16 + 128 + 16, create.Length);
        ulong node = create.As<FuseEntryOut>().NodeId;
        var data = Enumerable.Range(0, 10000).Select(i => (byte)i).ToArray();
        var write = Send(new RequestBuilder(FuseOpcode.Write, node).Struct(new FuseWriteIn { Offset = 100, Size = (uint)data.Length }).Bytes(data).Build());
        Assert.Equal((uint)data.Length, write.As<FuseWriteOut>().Size);
        var read = Send(new RequestBuilder(FuseOpcode.Read, node).Struct(new FuseReadIn { Offset = 100, Size = 20000 }).Build());
        Assert.Equal(data, read.Body.ToArray());
        var pastEnd = Send(new RequestBuilder(FuseOpcode.Read, node).Struct(new FuseReadIn { Offset = 1 << 20, Size = 10 }).Build());
        Assert.Equal(16, pastEnd.Length);
    }

    [Fact]
    public void WriteClaimingMoreDataThanSentIsMalformed()
    {
        Init();
        var bytes = new RequestBuilder(FuseOpcode.Write).Struct(new FuseWriteIn { Size = 100 }).Bytes(new byte[10]).Build();
        Assert.Equal(Errno.EIO, Send(bytes).Error);
    }

    [Fact]
    public void ReadDirPacksAlignedRecordsAndResumesAtOffsets()
    {
        Init();
        for (int i = 0; i < 50; i++)
        {
            Send(new RequestBuilder(FuseOpcode.MkNod).Struct(new FuseMkNodIn { Mode = 0x81A4 }).Name($"file-{i:D3}").Build());
        }

        var names = new List<string>();
        ulong offset = 0;
        while (true)
        {
            var reply = Send(new RequestBuilder(FuseOpcode.ReadDir).Struct(new FuseReadIn { Offset = offset, Size = 256 }).Build());
            Assert.Equal(0, reply.Error);
            Assert.True(reply.Length - 16 <= 256);
            if (reply.Length == 16)
            {
                break;
            }

            var body = reply.Body;
            while (body.Length > 0)
            {
                var dirent = MemoryMarshal.Read<FuseDirent>(body);
                int size = (24 + (int)dirent.NameLen + 7) & ~7;
                names.Add(System.Text.Encoding.UTF8.GetString(body.Slice(24, (int)dirent.NameLen)));
                offset = dirent.Off;
                body = body.Slice(size);
            }
        }

        var expected = new[] { ".", ".." }.Concat(Enumerable.Range(0, 50).Select(i => $"file-{i:D3}"));
        Assert.Equal(expected, names); // every entry once, in order, across many small replies
    }

    [Fact]
    public void ReadDirPlusCountsLookupsExceptDots()
    {
        Init();
        var mk = Send(new RequestBuilder(FuseOpcode.MkNod).Struct(new FuseMkNodIn { Mode = 0x81A4 }).Name("a").Build());
        var node = new NodeId(mk.As<FuseEntryOut>().NodeId);
        Send(new RequestBuilder(FuseOpcode.Forget, node.Value).Struct(new FuseForgetIn { NLookup = 1 }).Build());
        Assert.Equal(0, _fs.Lookups[node]);
        var reply = Send(new RequestBuilder(FuseOpcode.ReadDirPlus).Struct(new FuseReadIn { Size = 4096 }).Build());
        Assert.Equal(0, reply.Error);
        Assert.Equal(1, _fs.Lookups[node]);
        Assert.Equal(0, _fs.Lookups[NodeId.Root]);

        // The kernel refused that reply (the caller was interrupted): the references go back.
        _dispatcher.ForgetUndelivered(FuseOpcode.ReadDirPlus, reply.Bytes);
        Assert.Equal(0, _fs.Lookups[node]);
    }

    [Fact]
    public void UndeliveredEntryReplyForgetsItsLookup()
    {
        Init();
        var reply = Send(new RequestBuilder(FuseOpcode.MkDir).Struct(new FuseMkDirIn { Mode = 0x1ED }).Name("d").Build());
        var node = new NodeId(reply.As<FuseEntryOut>().NodeId);
        Assert.Equal(1, _fs.Lookups[node]);
        _dispatcher.ForgetUndelivered(FuseOpcode.MkDir, reply.Bytes);
        Assert.Equal(0, _fs.Lookups[node]);
        var error = Send(new RequestBuilder(FuseOpcode.Lookup).Name("missing").Build());
        _dispatcher.ForgetUndelivered(FuseOpcode.Lookup, error.Bytes); // error replies carry nothing
    }

    [Fact]
    public void BatchForgetReleasesEveryNode()
    {
        Init();
        var a = new NodeId(Send(new RequestBuilder(FuseOpcode.MkDir).Struct(new FuseMkDirIn()).Name("a").Build()).As<FuseEntryOut>().NodeId);
        var b = new NodeId(Send(new RequestBuilder(FuseOpcode.MkDir).Struct(new FuseMkDirIn()).Name("b").Build()).As<FuseEntryOut>().NodeId);
        Send(new RequestBuilder(FuseOpcode.Lookup).Name("b").Build());
        var batch = new RequestBuilder(FuseOpcode.BatchForget, 0)
            .Struct(new FuseBatchForgetIn { Count = 2 })
            .Struct(new FuseForgetOne { NodeId = a.Value, NLookup = 1 })
            .Struct(new FuseForgetOne { NodeId = b.Value, NLookup = 2 })
            .Build();
        Assert.Equal(0, _dispatcher.Handle(batch, _reply));
        Assert.Equal(0, _fs.Lookups.LiveNodes);
    }

    [Fact]
    public void GetXattrAnswersSizeQueriesAndRange()
    {
        Init();
        var set = new RequestBuilder(FuseOpcode.SetXattr).Struct(new FuseSetXattrIn { Size = 5 }).Name("user.k").Bytes("value"u8).Build();
        Assert.Equal(0, Send(set).Error);
        var size = Send(new RequestBuilder(FuseOpcode.GetXattr).Struct(new FuseGetXattrIn { Size = 0 }).Name("user.k").Build());
        Assert.Equal(5u, size.As<FuseGetXattrOut>().Size);
        var value = Send(new RequestBuilder(FuseOpcode.GetXattr).Struct(new FuseGetXattrIn { Size = 100 }).Name("user.k").Build());
        Assert.Equal("value"u8.ToArray(), value.Body.ToArray());
        Assert.Equal(Errno.ERANGE, Send(new RequestBuilder(FuseOpcode.GetXattr).Struct(new FuseGetXattrIn { Size = 2 }).Name("user.k").Build()).Error);
        var list = Send(new RequestBuilder(FuseOpcode.ListXattr).Struct(new FuseGetXattrIn { Size = 100 }).Build());
        Assert.Equal("user.k\0"u8.ToArray(), list.Body.ToArray());
        Assert.Equal(Errno.ENODATA, Send(new RequestBuilder(FuseOpcode.GetXattr).Struct(new FuseGetXattrIn { Size = 10 }).Name("user.none").Build()).Error);
    }

    [Fact]
    public void CopyFileRangeRepliesInBothForms()
    {
        Init();
        ulong a = Send(new RequestBuilder(FuseOpcode.Create).Struct(new FuseCreateIn { Mode = 0x81A4 }).Name("a").Build()).As<FuseEntryOut>().NodeId;
        ulong b = Send(new RequestBuilder(FuseOpcode.Create).Struct(new FuseCreateIn { Mode = 0x81A4 }).Name("b").Build()).As<FuseEntryOut>().NodeId;
        Send(new RequestBuilder(FuseOpcode.Write, a).Struct(new FuseWriteIn { Size = 8192 }).Bytes(new byte[8192]).Build());
        var narrow = Send(new RequestBuilder(FuseOpcode.CopyFileRange, a).Struct(new FuseCopyFileRangeIn { NodeIdOut = b, Len = 5000 }).Build());
        Assert.Equal(16 + 8, narrow.Length);
        Assert.Equal(5000u, narrow.As<FuseWriteOut>().Size);
        var wide = Send(new RequestBuilder(FuseOpcode.CopyFileRange64, a).Struct(new FuseCopyFileRangeIn { NodeIdOut = b, Len = 1UL << 33 }).Build());
        Assert.Equal(8192ul, wide.As<FuseCopyFileRangeOut>().BytesCopied);
    }

    [Fact]
    public void RenameExchangeAndNoReplaceReachTheFilesystem()
    {
        Init();
        Send(new RequestBuilder(FuseOpcode.MkDir).Struct(new FuseMkDirIn()).Name("x").Build());
        Send(new RequestBuilder(FuseOpcode.MkNod).Struct(new FuseMkNodIn { Mode = 0x81A4 }).Name("y").Build());
        var noReplace = new RequestBuilder(FuseOpcode.Rename2).Struct(new FuseRename2In { NewDir = 1, Flags = FuseConstants.RenameNoReplace }).Name("x").Name("y").Build();
        Assert.Equal(Errno.EEXIST, Send(noReplace).Error);
        var exchange = new RequestBuilder(FuseOpcode.Rename2).Struct(new FuseRename2In { NewDir = 1, Flags = FuseConstants.RenameExchange }).Name("x").Name("y").Build();
        Assert.Equal(0, Send(exchange).Error);
        Assert.Equal(0x8000u, Send(new RequestBuilder(FuseOpcode.Lookup).Name("x").Build()).As<FuseEntryOut>().Attr.Mode & 0xF000);
    }

    [Fact]
    public void InterruptOfAnUnknownRequestAsksTheKernelToRetry()
    {
        Init();
        var reply = Send(new RequestBuilder(FuseOpcode.Interrupt, 0, unique: 9).Struct(new FuseInterruptIn { Unique = 12345 }).Build());
        Assert.Equal(Errno.EAGAIN, reply.Error);
    }

    [Fact]
    public void InterruptReachesTheRequestInFlight()
    {
        Init();
        _fs.AddSlowFile("slow");
        ulong slow = Send(new RequestBuilder(FuseOpcode.Lookup).Name("slow").Build()).As<FuseEntryOut>().NodeId;
        FuseOutHeader header = default;
        var readerContext = _dispatcher.CreateContext();
        var reader = new Thread(() =>
        {
            var buffer = new byte[8192];
            int length = _dispatcher.Handle(new RequestBuilder(FuseOpcode.Read, slow, unique: 500).Struct(new FuseReadIn { Size = 100 }).Build(), buffer, readerContext);
            header = MemoryMarshal.Read<FuseOutHeader>(buffer.AsSpan(0, length));
        });
        reader.Start();

        var interrupter = _dispatcher.CreateContext();
        var deadline = DateTime.UtcNow.AddSeconds(10);
        int replyLength;
        do
        {
            // The reader may not be registered yet: EAGAIN means "ask again", as the kernel would.
            replyLength = _dispatcher.Handle(new RequestBuilder(FuseOpcode.Interrupt, 0, unique: 501).Struct(new FuseInterruptIn { Unique = 500 }).Build(), new byte[64], interrupter);
            Thread.Sleep(1);
        }
        while (replyLength != 0 && DateTime.UtcNow < deadline);

        Assert.Equal(0, replyLength);
        Assert.True(reader.Join(TimeSpan.FromSeconds(10)), "interrupted read never returned");
        Assert.Equal(-Errno.EINTR, header.Error);
        Assert.Equal(500ul, header.Unique);
        Assert.Equal(1, _fs.Interrupts);
    }

    [Fact]
    public void RandomBytesNeverThrowAndAlwaysYieldAValidReplyOrNone()
    {
        Init();
        var random = new Random(1234);
        for (int i = 0; i < 20000; i++)
        {
            var bytes = new byte[random.Next(0, 200)];
            random.NextBytes(bytes);
            if (bytes.Length >= 40)
            {
                BitConverter.GetBytes((uint)bytes.Length).CopyTo(bytes, 0);
                BitConverter.GetBytes((uint)random.Next(0, 60)).CopyTo(bytes, 4);
                bytes[36] = bytes[37] = 0; // no extensions, mostly
            }

            int length = _dispatcher.Handle(bytes, _reply);
            if (length > 0)
            {
                var header = MemoryMarshal.Read<FuseOutHeader>(_reply);
                Assert.Equal((uint)length, header.Len);
                Assert.True(header.Error <= 0 && header.Error > -4096);
            }
        }
    }

    [Fact]
    public void StatisticsCountRequestsErrorsAndMalformedOnes()
    {
        Init();
        Send(new RequestBuilder(FuseOpcode.Lookup).Name("missing").Build());
        Send(new RequestBuilder(FuseOpcode.MkDir).Struct(new FuseMkDirIn()).Name("d").Build());
        Send(new RequestBuilder(FuseOpcode.Lookup).Name("d").Build());
        Send(new RequestBuilder(FuseOpcode.Lookup).Bytes("no-nul"u8).Build());
        var stats = _dispatcher.Statistics;
        Assert.Equal(3, stats.Requests(FuseOpcode.Lookup));
        Assert.Equal(2, stats.Errors(FuseOpcode.Lookup)); // ENOENT and the malformed name's EIO
        Assert.Equal(1, stats.Requests(FuseOpcode.MkDir));
        Assert.Equal(0, stats.Errors(FuseOpcode.MkDir));
        Assert.Equal(1, stats.Requests(FuseOpcode.Init));
        Assert.Contains(stats.Snapshot(), row => row.Name == "LOOKUP" && row.Requests == 3);
    }

    [Fact]
    public void TraceLogsEveryRequestWithItsOutcome()
    {
        var log = new RecordingLogger();
        var dispatcher = new FuseDispatcher(new MemoryFileSystem(), new FuseSessionOptions { Logger = log, Trace = true });
        dispatcher.Handle(new RequestBuilder(FuseOpcode.Init, 0).Struct(new FuseInitIn { Major = 7, Minor = 45 }).Build(), _reply);
        dispatcher.Handle(new RequestBuilder(FuseOpcode.Lookup, unique: 77).Name("missing").Build(), _reply);
        Assert.Contains(log.Lines, l => l.StartsWith("INIT unique=7", StringComparison.Ordinal) && l.Contains("ok, 80 bytes"));
        Assert.Contains(log.Lines, l => l.StartsWith("LOOKUP unique=77 node=1", StringComparison.Ordinal) && l.Contains("error 2"));
    }

    private sealed class RecordingLogger : IFuseLogger
    {
        public List<string> Lines { get; } = [];

        public void Log(FuseLogLevel level, string message)
        {
            lock (Lines)
            {
                Lines.Add(message);
            }
        }
    }

    private sealed class EmptyFileSystem : IFuseFileSystem;

    private sealed class ThrowingFileSystem : IFuseFileSystem
    {
        public int Lookup(FuseRequestContext ctx, NodeId parent, ReadOnlySpan<byte> name, out FuseEntryOut entry) =>
            throw new InvalidOperationException("boom");
    }

    private sealed class WantingFileSystem(InitFlags extra) : IFuseFileSystem
    {
        public void Init(FuseConnection connection) => connection.Want |= extra;
    }
}
