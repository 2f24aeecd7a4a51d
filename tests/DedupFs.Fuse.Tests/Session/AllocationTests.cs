using DedupFs.Fuse.Protocol;
using DedupFs.Fuse.Session;
using DedupFs.Fuse.TestHost;
using DedupFs.Fuse.Tests.Support;

namespace DedupFs.Fuse.Tests.Session;

/// <summary>The request path allocates nothing per request once warm (hot-path rule).</summary>
public class AllocationTests
{
    [Fact]
    public void SteadyStateRequestsAllocateNothing()
    {
        var dispatcher = new FuseDispatcher(new NullFileSystem());
        var reply = GC.AllocateArray<byte>((1 << 20) + 4096, pinned: true);
        var ctx = dispatcher.CreateContext();
        dispatcher.Handle(new RequestBuilder(FuseOpcode.Init, 0).Struct(new FuseInitIn { Major = 7, Minor = 45, Flags = uint.MaxValue }).Build(), reply, ctx);
        var requests = new[]
        {
            new RequestBuilder(FuseOpcode.Lookup).Name("zero").Build(),
            new RequestBuilder(FuseOpcode.GetAttr, 2).Struct(new FuseGetAttrIn()).Build(),
            new RequestBuilder(FuseOpcode.Open, 2).Struct(new FuseOpenIn { Flags = 2 }).Build(),
            new RequestBuilder(FuseOpcode.Read, 2).Struct(new FuseReadIn { Offset = 4096, Size = 131072 }).Build(),
            new RequestBuilder(FuseOpcode.Read, 2).Struct(new FuseReadIn { Offset = 0, Size = 1 << 20 }).Build(),
            new RequestBuilder(FuseOpcode.Write, 2).Struct(new FuseWriteIn { Size = 4096 }).Bytes(new byte[4096]).Build(),
            new RequestBuilder(FuseOpcode.Flush, 2).Struct(new FuseFlushIn()).Build(),
            new RequestBuilder(FuseOpcode.Release, 2).Struct(new FuseReleaseIn()).Build(),
            new RequestBuilder(FuseOpcode.Forget, 2).Struct(new FuseForgetIn { NLookup = 1 }).Build(),
            new RequestBuilder(FuseOpcode.StatFs).Build(),
            new RequestBuilder(FuseOpcode.Lookup).Name("missing").Build(), // an error reply
        };

        void RunAll(int rounds)
        {
            for (int i = 0; i < rounds; i++)
            {
                foreach (var request in requests)
                {
                    dispatcher.Handle(request, reply, ctx);
                }
            }
        }

        RunAll(200); // warm up: JIT, tiering, lazy statics
        long before = GC.GetAllocatedBytesForCurrentThread();
        RunAll(1000);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(0, allocated);
    }
}
