// Mapping slot tables: loaded from the "maps" and "maplen" sub-databases on first use, kept in
// memory while the store is open, written back chunk by chunk at commit.
//
// The reverse map is derived, not stored: rmap(page) is computed by walking every mapping
// (the loaded tables in memory, the rest from LMDB). The Pages layer keeps refcount == |rmap|
// incrementally; fsck recomputes both sides and compares. A stored rmap would cost a second
// metadata write for every slot change to answer a question asked only when a shared page
// itself goes away (KSM's "notify every copy"), which is rare.
using LightningDB;

namespace DedupFs.Store;

public sealed partial class Store
{
    private readonly Lock _tablesLock = new();

    /// <summary>The slot table of <paramref name="inode"/>'s mapping (empty if it has none); one instance per inode.</summary>
    public SlotTable OpenSlotTable(ulong inode)
    {
        if (_tables.TryGetValue(inode, out SlotTable? table)) return table;
        lock (_tablesLock)
        {
            if (_tables.TryGetValue(inode, out table)) return table;
            bool deleted;
            lock (_deletedLock) deleted = _deletedMappings.Contains(inode);
            table = deleted ? new SlotTable(inode, [], 0) : LoadSlotTable(inode);
            _tables[inode] = table;
            return table;
        }
    }

    /// <summary>Whether the mapping's slot table is loaded in memory.</summary>
    public bool IsSlotTableLoaded(ulong inode) => _tables.ContainsKey(inode);

    /// <summary>Drops <paramref name="inode"/>'s slot table from memory if everything in it is committed
    /// (the filesystem calls this when the kernel forgets the inode). Returns whether it was unloaded;
    /// a dirty table stays until a commit has written it. The caller guarantees no one uses it meanwhile.</summary>
    public bool TryUnloadSlotTable(ulong inode)
    {
        // No commit (it holds the metadata gate to its end, so a table whose chunks sit in an
        // in-flight snapshot is never dropped before LMDB has them) and no mutation in flight.
        _gate.EnterWriteLock();
        _pageGate.EnterWriteLock();
        try
        {
            if (!_tables.TryGetValue(inode, out SlotTable? table)) return true;
            if (table.LengthDirty) return false;
            foreach (SlotTable.Chunk? c in table.Chunks)
                if (c is { Dirty: true }) return false;
            lock (_tablesLock) _tables.TryRemove(inode, out _);
            return true;
        }
        finally
        {
            _pageGate.ExitWriteLock();
            _gate.ExitWriteLock();
        }
    }

    /// <summary>Forgets <paramref name="inode"/>'s mapping. The caller has already released its pages (emptied it).</summary>
    public void DeleteMapping(ulong inode)
    {
        using MutationScope _ = EnterMutation();
        lock (_tablesLock)
        {
            lock (_deletedLock) _deletedMappings.Add(inode);
            _tables.TryRemove(inode, out SlotTable? _);
        }
        NoteMetadataChange();
    }

    /// <summary>Every inode that has a mapping (stored or loaded), in order.</summary>
    public List<ulong> MappingInodes()
    {
        var set = new SortedSet<ulong>();
        using (LightningTransaction tx = BeginRead())
        {
            foreach (LightningDatabase db in new[] { _mapLenDb, _mapsDb })
            {
                using LightningCursor cursor = tx.CreateCursor(db);
                var (rc, k, _) = cursor.First();
                while (rc == MDBResultCode.Success)
                {
                    set.Add(StoreFormat.ReadU64(k.AsSpan()));
                    (rc, k, _) = cursor.Next();
                }
            }
        }
        lock (_deletedLock) set.ExceptWith(_deletedMappings);
        foreach (ulong inode in _tables.Keys) set.Add(inode);
        return [.. set];
    }

    /// <summary>The reverse map of <paramref name="page"/>: every (inode, index) slot pointing at it.</summary>
    public List<(ulong Inode, long Index)> ComputeRmap(PageId page)
    {
        var result = new List<(ulong, long)>();
        foreach (ulong inode in MappingInodes())
        {
            SlotTable table = _tables.TryGetValue(inode, out SlotTable? loaded) ? loaded : LoadSlotTable(inode);
            table.ForEachPage((index, id) => { if (id == page) result.Add((inode, index)); });
        }
        return result;
    }

    private SlotTable LoadSlotTable(ulong inode)
    {
        var chunks = new List<SlotTable.Chunk?>();
        long length = 0;
        using LightningTransaction tx = BeginRead();
        byte[] lenKey = StoreFormat.U64Key(inode);
        var (lrc, _, lv) = tx.Get(_mapLenDb, lenKey);
        if (lrc == MDBResultCode.Success)
        {
            if (!TryUnseal(lenKey, lv.AsSpan(), out ReadOnlySpan<byte> len) || len.Length != 8)
                ThrowMetadata($"maplen/{inode}");
            length = (long)StoreFormat.ReadU64(len);
        }
        using LightningCursor cursor = tx.CreateCursor(_mapsDb);
        var (rc, k, v) = cursor.SetRange(StoreFormat.U64U64Key(inode, 0)) == MDBResultCode.Success ? cursor.GetCurrent() : (MDBResultCode.NotFound, default, default);
        while (rc == MDBResultCode.Success && StoreFormat.ReadU64(k.AsSpan()) == inode)
        {
            long c = (long)StoreFormat.ReadU64(k.AsSpan()[8..]);
            if (!TryUnseal(k.AsSpan(), v.AsSpan(), out ReadOnlySpan<byte> ids) || ids.Length % 4 != 0 || ids.Length > StoreFormat.SlotsPerMapChunk * 4)
                ThrowMetadata($"maps/{inode}/{c}");
            while (chunks.Count <= c) chunks.Add(null);
            var chunk = new SlotTable.Chunk(SlotTable.Chunk.CapacityFor(ids.Length / 4)) { Persisted = true };
            System.Runtime.InteropServices.MemoryMarshal.Cast<byte, uint>(ids).CopyTo(chunk.Ids);
            chunks[(int)c] = chunk;
            (rc, k, v) = cursor.Next();
        }
        return new SlotTable(inode, [.. chunks], length);
    }

    private void ThrowMetadata(string where)
    {
        Log($"dedupfs store {Directory}: metadata record {where}: checksum mismatch");
        throw new MetadataChecksumException(where);
    }
}
