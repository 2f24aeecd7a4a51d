// Per-file merge advice, the filesystem's madvise(MADV_MERGEABLE / MADV_UNMERGEABLE): the
// xattr user.dedupfs.merge ("1" or "0") on a file or a directory. A new file or directory
// copies its parent directory's value as an ordinary xattr at creation, so advice given to a
// directory reaches everything made in it later (and survives a rename out of it, as a
// file's own attribute would). Without the xattr a file follows the mount's default
// (mergeable=on|off).
//
// The page engine asks us about every Mapping object it creates, whoever opens it: the
// filesystem, a clone, or the merge scanner walking stored files nobody has open (on its own
// thread, holding its scan lock). So ConfigureMapping takes no filesystem lock and opens no
// mapping: it reads the xattr and the owner straight from the store's tables (or the owner
// from the live inode, whose record may not be written yet).
//
// Merge domain = the owner's uid, so merge_across_owners = 0 keeps users' pages apart; chown
// moves the file to the new owner's domain for later merges.
using DedupFs.Fuse.Api;
using DedupFs.Pages;
using DedupFs.Store;

namespace DedupFs.FileSystem;

public sealed partial class DedupFileSystem
{
    /// <summary>The xattr carrying a file's or directory's merge advice: "1" mergeable, "0" not.</summary>
    public const string MergeXattr = "user.dedupfs.merge";

    private static ReadOnlySpan<byte> MergeXattrBytes => "user.dedupfs.merge"u8;

    /// <summary>Sets <see cref="Mapping.Mergeable"/> and <see cref="Mapping.MergeDomain"/> of a mapping the engine
    /// has just created (installed as <see cref="PageEngineOptions.ConfigureMapping"/>). Takes no filesystem lock.</summary>
    public void ConfigureMapping(Mapping m)
    {
        m.Mergeable = MergeAdviceOf(m.Inode) ?? Options.MergeableByDefault;
        m.MergeDomain = OwnerOf(m.Inode);
    }

    private bool? MergeAdviceOf(ulong ino) =>
        Store.Xattrs.TryGet(StoreKeys.Xattr(ino, MergeXattrBytes), out byte[] v) ? ParseMergeAdvice(v) : null;

    // SETXATTR validates the value, but a store written before the attribute meant anything may
    // hold any bytes there: those count as no advice.
    private static bool? ParseMergeAdvice(ReadOnlySpan<byte> v) => v.SequenceEqual("0"u8) ? false : v.SequenceEqual("1"u8) ? true : null;

    private uint OwnerOf(ulong ino)
    {
        if (_inodes.TryGetLive(ino) is { } live) return live.Uid;
        return Store.Inodes.TryGet(StoreKeys.Inode(ino), out byte[] record) && Inode.Deserialize(ino, record) is { } n ? n.Uid : 0;
    }

    // A new file or directory takes its parent's advice. Namespace lock and store mutation held;
    // n already added to the table (so its mapping exists and OwnerOf finds it live).
    private void InheritMergeAdvice(Inode dir, Inode n)
    {
        if (!n.IsReg && !n.IsDir) return;
        if (Store.Xattrs.TryGet(StoreKeys.Xattr(dir.Ino, MergeXattrBytes), out byte[] v))
            Store.Xattrs.Put(StoreKeys.Xattr(n.Ino, MergeXattrBytes), v);
        if (n.IsReg) ConfigureMapping(n.Mapping!);
    }

    // SETXATTR / REMOVEXATTR of user.dedupfs.merge on a loaded file: the mapping follows at once.
    // Becoming unmergeable gives every shared slot a private copy, as MADV_UNMERGEABLE (and
    // run = 2 for all mergeable files) does, between two scanner batches so none merges again
    // behind us. Namespace lock held (so the mapping cannot be closed meanwhile), then the
    // scanner's lock: safe because the scanner never takes the namespace lock (ConfigureMapping
    // takes none). Store mutation not held (Unmerge enters the page gate itself).
    private void ApplyMergeAdvice(Inode n, bool? advice)
    {
        if (!n.IsReg) return;
        Mapping m = n.Mapping!;
        bool now = advice ?? Options.MergeableByDefault;
        if (now) m.Mergeable = true;
        else if (m.Mergeable) Engine.Scanner.MakeUnmergeable(m);
    }

    private static bool IsMergeXattr(ReadOnlySpan<byte> name) => name.SequenceEqual(MergeXattrBytes);

    private static int CheckMergeAdvice(ReadOnlySpan<byte> value) => ParseMergeAdvice(value) is null ? Errno.EINVAL : Errno.Success;
}
