namespace DedupFs.Fuse.Protocol;

/// <summary>
/// Protocol-wide numbers of the kernel's FUSE interface (include/uapi/linux/fuse.h, 7.45).
/// </summary>
public static class FuseConstants
{
    public const uint KernelVersion = 7;

    /// <summary>The newest minor version we speak; we answer with min(kernel's, ours).</summary>
    public const uint KernelMinorVersion = 45;

    /// <summary>Oldest minor we accept: 7.31 brought the fuse_init_out layout and flags we rely on.</summary>
    public const uint MinimumMinorVersion = 31;

    public const ulong RootId = 1;

    /// <summary>FUSE_MIN_READ_BUFFER: the kernel refuses a read of /dev/fuse into anything smaller.</summary>
    public const int MinReadBuffer = 8192;

    /// <summary>Room for the request header and the fixed arguments before WRITE's data (FUSE_BUFFER_HEADER_SIZE in libfuse).</summary>
    public const int BufferHeaderSize = 4096;

    public const int PageSize = 4096;

    /// <summary>The largest request this kernel lets us negotiate: max_pages 256 (1 MiB).</summary>
    public const int MaxMaxPages = 256;

    /// <summary>FUSE_DEV_IOC_CLONE = _IOR(229, 0, uint32_t).</summary>
    public const uint DevIocClone = 0x8004E500;

    /// <summary>FUSE_DEV_IOC_BACKING_OPEN = _IOW(229, 1, struct fuse_backing_map).</summary>
    public const uint DevIocBackingOpen = 0x4010E501;

    /// <summary>FUSE_DEV_IOC_BACKING_CLOSE = _IOW(229, 2, uint32_t).</summary>
    public const uint DevIocBackingClose = 0x4004E502;

    public const uint GetAttrFh = 1 << 0;
    public const uint FsyncFdatasync = 1 << 0;
    public const uint ReleaseFlush = 1 << 0;
    public const uint ReleaseFlockUnlock = 1 << 1;
    public const uint LkFlock = 1 << 0;
    public const uint WriteCache = 1 << 0;
    public const uint WriteLockOwner = 1 << 1;
    public const uint WriteKillSuidGid = 1 << 2;
    public const uint ReadLockOwner = 1 << 1;
    public const uint ExpireOnly = 1 << 0;

    /// <summary>RENAME_NOREPLACE / RENAME_EXCHANGE / RENAME_WHITEOUT as passed in fuse_rename2_in.flags.</summary>
    public const uint RenameNoReplace = 1 << 0;
    public const uint RenameExchange = 1 << 1;
    public const uint RenameWhiteout = 1 << 2;
}

/// <summary>INIT capability bits; bits 32..63 travel in the flags2 field (FUSE_INIT_EXT).</summary>
[Flags]
public enum InitFlags : ulong
{
    None = 0,
    AsyncRead = 1UL << 0,
    PosixLocks = 1UL << 1,
    FileOps = 1UL << 2,
    AtomicOTrunc = 1UL << 3,
    ExportSupport = 1UL << 4,
    BigWrites = 1UL << 5,
    DontMask = 1UL << 6,
    SpliceWrite = 1UL << 7,
    SpliceMove = 1UL << 8,
    SpliceRead = 1UL << 9,
    FlockLocks = 1UL << 10,
    HasIoctlDir = 1UL << 11,
    AutoInvalData = 1UL << 12,
    DoReadDirPlus = 1UL << 13,
    ReadDirPlusAuto = 1UL << 14,
    AsyncDio = 1UL << 15,
    WritebackCache = 1UL << 16,
    NoOpenSupport = 1UL << 17,
    ParallelDirOps = 1UL << 18,
    HandleKillPriv = 1UL << 19,
    PosixAcl = 1UL << 20,
    AbortError = 1UL << 21,
    MaxPages = 1UL << 22,
    CacheSymlinks = 1UL << 23,
    NoOpenDirSupport = 1UL << 24,
    ExplicitInvalData = 1UL << 25,
    MapAlignment = 1UL << 26,
    Submounts = 1UL << 27,
    HandleKillPrivV2 = 1UL << 28,
    SetXattrExt = 1UL << 29,
    InitExt = 1UL << 30,
    InitReserved = 1UL << 31,
    SecurityCtx = 1UL << 32,
    HasInodeDax = 1UL << 33,
    CreateSuppGroup = 1UL << 34,
    HasExpireOnly = 1UL << 35,
    DirectIoAllowMmap = 1UL << 36,
    Passthrough = 1UL << 37,
    NoExportSupport = 1UL << 38,
    HasResend = 1UL << 39,
    AllowIdmap = 1UL << 40,
    OverIoUring = 1UL << 41,
    RequestTimeout = 1UL << 42,
}

/// <summary>fuse_open_out.open_flags.</summary>
[Flags]
public enum OpenReplyFlags : uint
{
    None = 0,
    DirectIo = 1 << 0,
    KeepCache = 1 << 1,
    NonSeekable = 1 << 2,
    CacheDir = 1 << 3,
    Stream = 1 << 4,
    NoFlush = 1 << 5,
    ParallelDirectWrites = 1 << 6,
    Passthrough = 1 << 7,
}

/// <summary>fuse_setattr_in.valid.</summary>
[Flags]
public enum SetAttrValid : uint
{
    None = 0,
    Mode = 1 << 0,
    Uid = 1 << 1,
    Gid = 1 << 2,
    Size = 1 << 3,
    Atime = 1 << 4,
    Mtime = 1 << 5,
    Fh = 1 << 6,
    AtimeNow = 1 << 7,
    MtimeNow = 1 << 8,
    LockOwner = 1 << 9,
    Ctime = 1 << 10,
    KillSuidGid = 1 << 11,
}
