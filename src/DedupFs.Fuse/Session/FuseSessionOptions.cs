using DedupFs.Fuse.Protocol;

namespace DedupFs.Fuse.Session;

/// <summary>How the session serves the kernel: threads, request size, capabilities asked for at INIT.</summary>
public sealed class FuseSessionOptions
{
    /// <summary>
    /// Capabilities requested by default when the kernel offers them. The filesystem may add
    /// the optional ones (WritebackCache, DirectIoAllowMmap, Passthrough, PosixLocks, FlockLocks,
    /// CacheSymlinks, ...) in <see cref="Api.IFuseFileSystem.Init"/> or through <see cref="ExtraCapabilities"/>.
    /// </summary>
    public const InitFlags DefaultCapabilities =
        InitFlags.AsyncRead | InitFlags.BigWrites | InitFlags.MaxPages | InitFlags.ParallelDirOps |
        InitFlags.DoReadDirPlus | InitFlags.ReadDirPlusAuto | InitFlags.AtomicOTrunc |
        InitFlags.AsyncDio | InitFlags.AutoInvalData | InitFlags.HasIoctlDir | InitFlags.ExportSupport |
        InitFlags.InitExt | InitFlags.SetXattrExt | InitFlags.HasExpireOnly;

    /// <summary>Worker threads, each reading its own cloned /dev/fuse descriptor.</summary>
    public int Workers { get; init; } = Math.Max(2, Math.Min(8, Environment.ProcessorCount * 2));

    /// <summary>Largest WRITE (and READ) payload; the kernel caps it at max_pages * 4 KiB.</summary>
    public int MaxWrite { get; init; } = FuseConstants.MaxMaxPages * FuseConstants.PageSize;

    public InitFlags Capabilities { get; init; } = DefaultCapabilities;

    /// <summary>Optional capabilities to request on top of <see cref="Capabilities"/>.</summary>
    public InitFlags ExtraCapabilities { get; init; }

    /// <summary>Ask for no capability the kernel offers by default without asking (e.g. turn ReadDirPlus off).</summary>
    public InitFlags DisabledCapabilities { get; init; }

    /// <summary>Use FUSE_DEV_IOC_CLONE so each worker has its own queue position; off reads one shared descriptor.</summary>
    public bool CloneDescriptors { get; init; } = true;

    public Api.IFuseLogger Logger { get; init; } = Api.StderrFuseLogger.Instance;

    /// <summary>Log every request and its outcome at Debug level (like libfuse's -d). Slow: for debugging only.</summary>
    public bool Trace { get; init; }

    /// <summary>Size of each worker's request and reply buffers.</summary>
    internal int BufferSize => MaxWrite + FuseConstants.BufferHeaderSize;
}
