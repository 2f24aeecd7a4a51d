// The metadata of one content page, 16 bytes, kept in memory for every slot of the page file
// (PageTable) and persisted in the "pages" sub-database in chunks of 256.
//
//   RefCount  number of mapping slots that point at the page (== |rmap|). 0 = the slot is free
//             (or waiting for the commit that freed it to become durable).
//   Crc32C    checksum of the 4096 bytes, verified on every read from disk.
//   Hash      xxHash64 (seed 0) of the bytes: the content index key. A hash match is only a
//             candidate; pages are byte-compared before they are shared.
using System.Runtime.InteropServices;

namespace DedupFs.Store;

/// <summary>Refcount, checksum and content hash of one page slot.</summary>
[StructLayout(LayoutKind.Sequential, Pack = 4)]
public struct PageRecord
{
    /// <summary>Mapping slots pointing at this page; 0 means free.</summary>
    public uint RefCount;

    /// <summary>CRC32C of the page bytes.</summary>
    public uint Crc32C;

    /// <summary>xxHash64 of the page bytes (content index key).</summary>
    public ulong Hash;

    /// <summary>Size of one record in memory and on disk.</summary>
    public const int Size = 16;
}
