// The on-disk layout of a store directory, version 1.
//
//   STORE/pages.dat     page data: slot N at byte offset N * 4096, no header, so a slot is one
//                       aligned pread/pwrite. Its integrity comes from the per-page CRC32C kept
//                       in the metadata, never from the file itself.
//   STORE/meta/         an LMDB environment (data.mdb, lock.mdb) with these sub-databases:
//     header   "format"    -> magic "DEDUPFS1", u32 version, u32 page size, creator LMDB version
//              "highwater" -> u64 number of slots ever allocated in pages.dat
//     pages    u64 chunk   -> 256 PageRecords (4096 bytes) + crc32c      (refcounts, checksums, hashes)
//     maps     u64 inode, u64 chunk -> up to 1024 u32 PageIds + crc32c   (mapping slot tables)
//     maplen   u64 inode   -> u64 length in bytes + crc32c
//     inodes   u64 inode   -> blob + crc32c                               (filesystem attributes)
//     dirents  u64 parent, name -> blob + crc32c                          (directory entries)
//     xattrs   u64 inode, name  -> blob + crc32c                          (extended attributes)
//     kv       name        -> blob + crc32c                               (filesystem-wide values)
//
// Integers in keys are big-endian so LMDB's byte order is numeric order (a cursor walks one
// inode's chunks or one directory's entries in order). Every value carries a trailing CRC32C
// of key and payload: LMDB 0.9 has no checksums of its own, and a flipped byte in metadata
// must be reported, never believed.
//
// The content index (hash -> pages) and the reverse map (page -> slots) are not stored:
// both are derived, the first from the hashes in "pages" when the store opens, the second
// from "maps" when asked. Storing them would double every metadata write for facts that a
// scan reproduces exactly; fsck verifies the hashes against the bytes.
using System.Buffers.Binary;

namespace DedupFs.Store;

internal static class StoreFormat
{
    public const int PageSize = 4096;
    public const int PageShift = 12;
    public const uint Version = 1;
    public static ReadOnlySpan<byte> Magic => "DEDUPFS1"u8;

    public const int PagesPerChunk = 256;            // PageRecords per "pages" value
    public const int SlotsPerMapChunk = 1024;        // PageIds per "maps" value (4 MiB of file)
    public const int MapChunkShift = 10;

    public const string PageFileName = "pages.dat";
    public const string MetaDirName = "meta";

    public const string HeaderDb = "header";
    public const string PagesDb = "pages";
    public const string MapsDb = "maps";
    public const string MapLenDb = "maplen";
    public const string InodesDb = "inodes";
    public const string DirentsDb = "dirents";
    public const string XattrsDb = "xattrs";
    public const string KvDb = "kv";

    public static ReadOnlySpan<byte> FormatKey => "format"u8;
    public static ReadOnlySpan<byte> HighWaterKey => "highwater"u8;

    public static void WriteU64(Span<byte> dest, ulong value) => BinaryPrimitives.WriteUInt64BigEndian(dest, value);
    public static ulong ReadU64(ReadOnlySpan<byte> src) => BinaryPrimitives.ReadUInt64BigEndian(src);

    public static byte[] U64Key(ulong a)
    {
        var key = new byte[8];
        WriteU64(key, a);
        return key;
    }

    public static byte[] U64U64Key(ulong a, ulong b)
    {
        var key = new byte[16];
        WriteU64(key, a);
        WriteU64(key.AsSpan(8), b);
        return key;
    }

    public static byte[] U64NameKey(ulong a, ReadOnlySpan<byte> name)
    {
        var key = new byte[8 + name.Length];
        WriteU64(key, a);
        name.CopyTo(key.AsSpan(8));
        return key;
    }
}
