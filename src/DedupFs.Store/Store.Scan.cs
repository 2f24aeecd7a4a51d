// Raw scans of the metadata for fsck: every record is visited and checked on its own, so
// one damaged record is reported and the rest are still examined.
using LightningDB;

namespace DedupFs.Store;

public sealed partial class Store
{
    // Visits every "maps" record: (inode, chunk, ids) or, if damaged, (inode, chunk, null).
    internal void ScanMapRecords(Action<ulong, long, uint[]?> visit)
    {
        using LightningTransaction tx = BeginRead();
        using LightningCursor cursor = tx.CreateCursor(_mapsDb);
        var (rc, k, v) = cursor.First();
        while (rc == MDBResultCode.Success)
        {
            ReadOnlySpan<byte> key = k.AsSpan();
            ulong inode = key.Length >= 8 ? StoreFormat.ReadU64(key) : ulong.MaxValue;
            long chunk = key.Length == 16 ? (long)StoreFormat.ReadU64(key[8..]) : -1;
            if (key.Length == 16 && TryUnseal(key, v.AsSpan(), out ReadOnlySpan<byte> ids) && ids.Length % 4 == 0
                && ids.Length <= StoreFormat.SlotsPerMapChunk * 4)
                visit(inode, chunk, System.Runtime.InteropServices.MemoryMarshal.Cast<byte, uint>(ids).ToArray());
            else
                visit(inode, chunk, null);
            (rc, k, v) = cursor.Next();
        }
    }

    // Visits every "maplen" record: (inode, length or -1 if damaged).
    internal void ScanMapLengths(Action<ulong, long> visit)
    {
        using LightningTransaction tx = BeginRead();
        using LightningCursor cursor = tx.CreateCursor(_mapLenDb);
        var (rc, k, v) = cursor.First();
        while (rc == MDBResultCode.Success)
        {
            ReadOnlySpan<byte> key = k.AsSpan();
            ulong inode = StoreFormat.ReadU64(key);
            visit(inode, TryUnseal(key, v.AsSpan(), out ReadOnlySpan<byte> len) && len.Length == 8 ? (long)StoreFormat.ReadU64(len) : -1);
            (rc, k, v) = cursor.Next();
        }
    }

    // Visits every blob record of every blob table: (table, key, ok).
    internal void ScanBlobs(Action<string, byte[], bool> visit)
    {
        foreach (BlobTable table in new[] { Inodes, Dirents, Xattrs, Values })
        {
            using LightningTransaction tx = BeginRead();
            using LightningCursor cursor = tx.CreateCursor(table.Database);
            var (rc, k, v) = cursor.First();
            while (rc == MDBResultCode.Success)
            {
                visit(table.Name, k.CopyToNewArray(), TryUnseal(k.AsSpan(), v.AsSpan(), out _));
                (rc, k, v) = cursor.Next();
            }
        }
    }

    // Reads a slot's raw bytes without checking them (fsck compares itself). Returns bytes read.
    internal int ReadSlotRaw(long slot, Span<byte> dest)
    {
        int n = RandomAccess.Read(_pageFile, dest, slot * PageSize);
        if (n < dest.Length) dest[n..].Clear();
        return n;
    }

    internal long PageFileLength => RandomAccess.GetLength(_pageFile);
}
