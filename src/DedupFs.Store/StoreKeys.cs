// Key builders for the blob tables, so every layer encodes inode numbers the same way
// (big-endian, so a cursor walks a directory's entries or an inode's xattrs in order).
namespace DedupFs.Store;

/// <summary>Keys of <see cref="Store.Inodes"/>, <see cref="Store.Dirents"/> and <see cref="Store.Xattrs"/>.</summary>
public static class StoreKeys
{
    /// <summary>Key of an inode's attribute blob.</summary>
    public static byte[] Inode(ulong inode) => StoreFormat.U64Key(inode);

    /// <summary>Key of the entry <paramref name="name"/> in directory <paramref name="parent"/>.</summary>
    public static byte[] Dirent(ulong parent, ReadOnlySpan<byte> name) => StoreFormat.U64NameKey(parent, name);

    /// <summary>Prefix of every entry of directory <paramref name="parent"/> (for List).</summary>
    public static byte[] DirentPrefix(ulong parent) => StoreFormat.U64Key(parent);

    /// <summary>Key of xattr <paramref name="name"/> of <paramref name="inode"/>.</summary>
    public static byte[] Xattr(ulong inode, ReadOnlySpan<byte> name) => StoreFormat.U64NameKey(inode, name);

    /// <summary>Prefix of every xattr of <paramref name="inode"/>.</summary>
    public static byte[] XattrPrefix(ulong inode) => StoreFormat.U64Key(inode);

    /// <summary>The name part of a dirent or xattr key.</summary>
    public static ReadOnlySpan<byte> NameOf(ReadOnlySpan<byte> key) => key[8..];
}
