using System.Runtime.CompilerServices;

namespace DedupFs.Fuse.Protocol;

/// <summary>The facts the session needs about one opcode, kept in one table instead of scattered over a switch.</summary>
/// <param name="Name">The kernel's name, for logs.</param>
/// <param name="MinArgumentSize">Bytes of fixed arguments the request must carry; shorter is malformed.</param>
/// <param name="HasReply">False for FORGET, BATCH_FORGET and NOTIFY_REPLY, which the kernel never waits for.</param>
/// <param name="NeedsNode">The request addresses fuse_in_header.nodeid, so 0 there is malformed.</param>
public readonly record struct OpcodeInfo(string Name, int MinArgumentSize, bool HasReply, bool NeedsNode);

/// <summary>Per-opcode facts, indexed by opcode number; checked once at start-up against <see cref="FuseOpcode"/>.</summary>
public static class OpcodeTable
{
    private static readonly OpcodeInfo?[] Table = Build();

    public static bool TryGet(uint opcode, out OpcodeInfo info)
    {
        if (opcode < (uint)Table.Length && Table[opcode] is { } found)
        {
            info = found;
            return true;
        }

        info = default;
        return false;
    }

    public static string NameOf(uint opcode) => TryGet(opcode, out var info) ? info.Name : $"OPCODE_{opcode}";

    private static OpcodeInfo?[] Build()
    {
        var t = new OpcodeInfo?[(int)FuseOpcode.CopyFileRange64 + 1];
        void Add(FuseOpcode op, string name, int min, bool reply = true, bool node = true) =>
            t[(int)op] = new OpcodeInfo(name, min, reply, node);

        Add(FuseOpcode.Lookup, "LOOKUP", 1);
        Add(FuseOpcode.Forget, "FORGET", Size<FuseForgetIn>(), reply: false);
        Add(FuseOpcode.GetAttr, "GETATTR", 0); // 7.9+ sends fuse_getattr_in; tolerate its absence
        Add(FuseOpcode.SetAttr, "SETATTR", Size<FuseSetAttrIn>());
        Add(FuseOpcode.ReadLink, "READLINK", 0);
        Add(FuseOpcode.Symlink, "SYMLINK", 2);
        Add(FuseOpcode.MkNod, "MKNOD", 8 + 1);
        Add(FuseOpcode.MkDir, "MKDIR", Size<FuseMkDirIn>() + 1);
        Add(FuseOpcode.Unlink, "UNLINK", 1);
        Add(FuseOpcode.RmDir, "RMDIR", 1);
        Add(FuseOpcode.Rename, "RENAME", Size<FuseRenameIn>() + 2);
        Add(FuseOpcode.Link, "LINK", Size<FuseLinkIn>() + 1);
        Add(FuseOpcode.Open, "OPEN", Size<FuseOpenIn>());
        Add(FuseOpcode.Read, "READ", Size<FuseReadIn>());
        Add(FuseOpcode.Write, "WRITE", Size<FuseWriteIn>());
        Add(FuseOpcode.StatFs, "STATFS", 0, node: false);
        Add(FuseOpcode.Release, "RELEASE", Size<FuseReleaseIn>());
        Add(FuseOpcode.Fsync, "FSYNC", Size<FuseFsyncIn>());
        Add(FuseOpcode.SetXattr, "SETXATTR", 8 + 1);
        Add(FuseOpcode.GetXattr, "GETXATTR", Size<FuseGetXattrIn>() + 1);
        Add(FuseOpcode.ListXattr, "LISTXATTR", Size<FuseGetXattrIn>());
        Add(FuseOpcode.RemoveXattr, "REMOVEXATTR", 1);
        Add(FuseOpcode.Flush, "FLUSH", Size<FuseFlushIn>());
        Add(FuseOpcode.Init, "INIT", 16, node: false);
        Add(FuseOpcode.OpenDir, "OPENDIR", Size<FuseOpenIn>());
        Add(FuseOpcode.ReadDir, "READDIR", Size<FuseReadIn>());
        Add(FuseOpcode.ReleaseDir, "RELEASEDIR", Size<FuseReleaseIn>());
        Add(FuseOpcode.FsyncDir, "FSYNCDIR", Size<FuseFsyncIn>());
        Add(FuseOpcode.GetLk, "GETLK", Size<FuseLkIn>());
        Add(FuseOpcode.SetLk, "SETLK", Size<FuseLkIn>());
        Add(FuseOpcode.SetLkW, "SETLKW", Size<FuseLkIn>());
        Add(FuseOpcode.Access, "ACCESS", Size<FuseAccessIn>());
        Add(FuseOpcode.Create, "CREATE", Size<FuseCreateIn>() + 1);
        Add(FuseOpcode.Interrupt, "INTERRUPT", Size<FuseInterruptIn>(), node: false);
        Add(FuseOpcode.Bmap, "BMAP", Size<FuseBmapIn>());
        Add(FuseOpcode.Destroy, "DESTROY", 0, node: false);
        Add(FuseOpcode.Ioctl, "IOCTL", Size<FuseIoctlIn>());
        Add(FuseOpcode.Poll, "POLL", Size<FusePollIn>());
        Add(FuseOpcode.NotifyReply, "NOTIFY_REPLY", Size<FuseNotifyRetrieveIn>(), reply: false);
        Add(FuseOpcode.BatchForget, "BATCH_FORGET", Size<FuseBatchForgetIn>(), reply: false, node: false);
        Add(FuseOpcode.Fallocate, "FALLOCATE", Size<FuseFallocateIn>());
        Add(FuseOpcode.ReadDirPlus, "READDIRPLUS", Size<FuseReadIn>());
        Add(FuseOpcode.Rename2, "RENAME2", Size<FuseRename2In>() + 2);
        Add(FuseOpcode.Lseek, "LSEEK", Size<FuseLseekIn>());
        Add(FuseOpcode.CopyFileRange, "COPY_FILE_RANGE", Size<FuseCopyFileRangeIn>());
        Add(FuseOpcode.SetupMapping, "SETUPMAPPING", 40);
        Add(FuseOpcode.RemoveMapping, "REMOVEMAPPING", 4);
        Add(FuseOpcode.SyncFs, "SYNCFS", Size<FuseSyncFsIn>());
        Add(FuseOpcode.TmpFile, "TMPFILE", Size<FuseCreateIn>());
        Add(FuseOpcode.StatX, "STATX", Size<FuseStatxIn>());
        Add(FuseOpcode.CopyFileRange64, "COPY_FILE_RANGE_64", Size<FuseCopyFileRangeIn>());

        foreach (FuseOpcode op in Enum.GetValues<FuseOpcode>())
        {
            if (t[(int)op] is null)
            {
                throw new InvalidOperationException($"opcode table has no entry for {op}");
            }
        }

        return t;
    }

    private static int Size<T>() where T : unmanaged => Unsafe.SizeOf<T>();
}
