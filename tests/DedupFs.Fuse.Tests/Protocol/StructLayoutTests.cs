using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using DedupFs.Fuse.Protocol;

namespace DedupFs.Fuse.Tests.Protocol;

/// <summary>
/// Every wire structure against the kernel's layout (include/uapi/linux/fuse.h, 7.45): sizes,
/// and the offsets of the fields that moved or were added over the protocol's history.
/// </summary>
public class StructLayoutTests
{
    public static TheoryData<Type, int> Sizes => new()
    {
        { typeof(FuseInHeader), 40 }, { typeof(FuseOutHeader), 16 },
        { typeof(FuseInitIn), 64 }, { typeof(FuseInitOut), 64 },
        { typeof(FuseAttr), 88 }, { typeof(FuseKStatFs), 80 }, { typeof(FuseFileLock), 24 },
        { typeof(FuseEntryOut), 128 }, { typeof(FuseAttrOut), 104 },
        { typeof(FuseForgetIn), 8 }, { typeof(FuseForgetOne), 16 }, { typeof(FuseBatchForgetIn), 8 },
        { typeof(FuseGetAttrIn), 16 }, { typeof(FuseMkNodIn), 16 }, { typeof(FuseMkDirIn), 8 },
        { typeof(FuseRenameIn), 8 }, { typeof(FuseRename2In), 16 }, { typeof(FuseLinkIn), 8 },
        { typeof(FuseSetAttrIn), 88 }, { typeof(FuseOpenIn), 8 }, { typeof(FuseCreateIn), 16 },
        { typeof(FuseOpenOut), 16 }, { typeof(FuseReleaseIn), 24 }, { typeof(FuseFlushIn), 24 },
        { typeof(FuseReadIn), 40 }, { typeof(FuseWriteIn), 40 }, { typeof(FuseWriteOut), 8 },
        { typeof(FuseStatFsOut), 80 }, { typeof(FuseFsyncIn), 16 }, { typeof(FuseSetXattrIn), 16 },
        { typeof(FuseGetXattrIn), 8 }, { typeof(FuseGetXattrOut), 8 }, { typeof(FuseLkIn), 48 },
        { typeof(FuseLkOut), 24 }, { typeof(FuseAccessIn), 8 }, { typeof(FuseInterruptIn), 8 },
        { typeof(FuseBmapIn), 16 }, { typeof(FuseBmapOut), 8 }, { typeof(FuseIoctlIn), 32 },
        { typeof(FusePollIn), 24 }, { typeof(FuseFallocateIn), 32 }, { typeof(FuseDirent), 24 },
        { typeof(FuseDirentPlus), 152 }, { typeof(FuseNotifyInvalInodeOut), 24 },
        { typeof(FuseNotifyInvalEntryOut), 16 }, { typeof(FuseNotifyDeleteOut), 24 },
        { typeof(FuseNotifyStoreOut), 24 }, { typeof(FuseNotifyRetrieveOut), 32 },
        { typeof(FuseNotifyRetrieveIn), 40 }, { typeof(FuseLseekIn), 24 }, { typeof(FuseLseekOut), 8 },
        { typeof(FuseCopyFileRangeIn), 56 }, { typeof(FuseCopyFileRangeOut), 8 },
        { typeof(FuseSyncFsIn), 8 }, { typeof(FuseSxTime), 16 }, { typeof(FuseStatx), 256 },
        { typeof(FuseStatxIn), 24 }, { typeof(FuseStatxOut), 288 }, { typeof(FuseBackingMap), 16 },
    };

    [Theory]
    [MemberData(nameof(Sizes))]
    public void StructSizeMatchesKernel(Type type, int expected)
    {
        Assert.Equal(expected, Marshal.SizeOf(type));
        var managedSize = typeof(Unsafe).GetMethod(nameof(Unsafe.SizeOf))!.MakeGenericMethod(type).Invoke(null, null);
        Assert.Equal(expected, (int)managedSize!);
    }

    public static TheoryData<Type, string, int> Offsets => new()
    {
        { typeof(FuseInHeader), nameof(FuseInHeader.Unique), 8 },
        { typeof(FuseInHeader), nameof(FuseInHeader.NodeId), 16 },
        { typeof(FuseInHeader), nameof(FuseInHeader.Pid), 32 },
        { typeof(FuseInHeader), nameof(FuseInHeader.TotalExtLen), 36 },
        { typeof(FuseOutHeader), nameof(FuseOutHeader.Unique), 8 },
        { typeof(FuseInitIn), nameof(FuseInitIn.Flags2), 16 },
        { typeof(FuseInitOut), nameof(FuseInitOut.MaxBackground), 16 },
        { typeof(FuseInitOut), nameof(FuseInitOut.MaxWrite), 20 },
        { typeof(FuseInitOut), nameof(FuseInitOut.TimeGran), 24 },
        { typeof(FuseInitOut), nameof(FuseInitOut.MaxPages), 28 },
        { typeof(FuseInitOut), nameof(FuseInitOut.Flags2), 32 },
        { typeof(FuseInitOut), nameof(FuseInitOut.MaxStackDepth), 36 },
        { typeof(FuseInitOut), nameof(FuseInitOut.RequestTimeout), 40 },
        { typeof(FuseAttr), nameof(FuseAttr.AtimeNsec), 48 },
        { typeof(FuseAttr), nameof(FuseAttr.Mode), 60 },
        { typeof(FuseAttr), nameof(FuseAttr.BlkSize), 80 },
        { typeof(FuseEntryOut), nameof(FuseEntryOut.EntryValidNsec), 32 },
        { typeof(FuseEntryOut), nameof(FuseEntryOut.Attr), 40 },
        { typeof(FuseAttrOut), nameof(FuseAttrOut.Attr), 16 },
        { typeof(FuseSetAttrIn), nameof(FuseSetAttrIn.Size), 16 },
        { typeof(FuseSetAttrIn), nameof(FuseSetAttrIn.AtimeNsec), 56 },
        { typeof(FuseSetAttrIn), nameof(FuseSetAttrIn.Mode), 68 },
        { typeof(FuseSetAttrIn), nameof(FuseSetAttrIn.Uid), 76 },
        { typeof(FuseOpenOut), nameof(FuseOpenOut.BackingId), 12 },
        { typeof(FuseReadIn), nameof(FuseReadIn.Size), 16 },
        { typeof(FuseReadIn), nameof(FuseReadIn.LockOwner), 24 },
        { typeof(FuseWriteIn), nameof(FuseWriteIn.WriteFlags), 20 },
        { typeof(FuseLkIn), nameof(FuseLkIn.Lk), 16 },
        { typeof(FuseLkIn), nameof(FuseLkIn.LkFlags), 40 },
        { typeof(FuseCopyFileRangeIn), nameof(FuseCopyFileRangeIn.NodeIdOut), 16 },
        { typeof(FuseCopyFileRangeIn), nameof(FuseCopyFileRangeIn.Flags), 48 },
        { typeof(FuseDirentPlus), nameof(FuseDirentPlus.Dirent), 128 },
        { typeof(FuseStatx), nameof(FuseStatx.Mode), 28 },
        { typeof(FuseStatx), nameof(FuseStatx.Ino), 32 },
        { typeof(FuseStatx), nameof(FuseStatx.Atime), 64 },
        { typeof(FuseStatx), nameof(FuseStatx.Mtime), 112 },
        { typeof(FuseStatx), nameof(FuseStatx.RdevMajor), 128 },
        { typeof(FuseStatxOut), nameof(FuseStatxOut.Stat), 32 },
        { typeof(FuseStatxIn), nameof(FuseStatxIn.SxFlags), 16 },
        { typeof(FuseNotifyRetrieveOut), nameof(FuseNotifyRetrieveOut.Size), 24 },
        { typeof(FuseNotifyRetrieveIn), nameof(FuseNotifyRetrieveIn.Size), 16 },
    };

    [Theory]
    [MemberData(nameof(Offsets))]
    public void FieldOffsetMatchesKernel(Type type, string field, int expected) =>
        Assert.Equal(expected, (int)Marshal.OffsetOf(type, field));

    [Fact]
    public void OpcodeTableCoversEveryOpcodeWithItsKernelName()
    {
        foreach (var op in Enum.GetValues<FuseOpcode>())
        {
            Assert.True(OpcodeTable.TryGet((uint)op, out var info), op.ToString());
            Assert.Equal(op.ToString().ToUpperInvariant(), info.Name.Replace("_", ""));
        }

        Assert.False(OpcodeTable.TryGet(7, out _)); // never assigned in fuse.h
        Assert.False(OpcodeTable.TryGet(4096, out _)); // CUSE_INIT is not ours
        Assert.Equal(53u, (uint)FuseOpcode.CopyFileRange64);
        Assert.Equal(52u, (uint)FuseOpcode.StatX);
    }

    [Fact]
    public void InitFlagBitsMatchKernel()
    {
        Assert.Equal(1UL << 22, (ulong)InitFlags.MaxPages);
        Assert.Equal(1UL << 30, (ulong)InitFlags.InitExt);
        Assert.Equal(1UL << 36, (ulong)InitFlags.DirectIoAllowMmap);
        Assert.Equal(1UL << 37, (ulong)InitFlags.Passthrough);
        Assert.Equal(1u << 7, (uint)OpenReplyFlags.Passthrough);
        Assert.Equal(0x8004E500u, FuseConstants.DevIocClone);
    }
}
