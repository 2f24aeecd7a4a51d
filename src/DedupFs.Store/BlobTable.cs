// A sub-database of opaque byte blobs (inode attributes, directory entries, xattrs, filesystem
// values) with group commit: puts and deletes go to an in-memory overlay and reach LMDB in
// the next commit, all in the same transaction as the pages and mappings they refer to.
//
// Reads look in the overlay first, then in LMDB. The commit writes the overlay into LMDB and
// only then empties it, so a reader never sees an older value than the newest it could have
// seen before. Each stored value carries a trailing CRC32C of key and payload; a mismatch is
// a MetadataChecksumException (EIO), never wrong bytes.
//
// Keys are compared byte-wise (LMDB's order); List(prefix) returns the merged view sorted.
using LightningDB;

namespace DedupFs.Store;

/// <summary>A transactional table of blobs keyed by bytes.</summary>
public sealed class BlobTable
{
    private readonly Store _store;
    private readonly LightningDatabase _db;
    private readonly Lock _lock = new();                // guards _overlay
    private Dictionary<byte[], byte[]?> _overlay = new(ByteArrayComparer.Instance); // null value = deleted

    internal string Name { get; }

    internal LightningDatabase Database => _db;

    internal BlobTable(Store store, LightningDatabase db, string name)
    {
        _store = store;
        _db = db;
        Name = name;
    }

    /// <summary>The value stored under <paramref name="key"/>, or false.</summary>
    public bool TryGet(ReadOnlySpan<byte> key, out byte[] value)
    {
        byte[] k = key.ToArray();
        lock (_lock)
        {
            if (_overlay.TryGetValue(k, out byte[]? pending))
            {
                value = pending ?? [];
                return pending != null;
            }
        }
        using LightningTransaction tx = _store.BeginRead();
        var (rc, _, v) = tx.Get(_db, key);
        if (rc != MDBResultCode.Success)
        {
            value = [];
            return false;
        }
        value = Unseal(key, v.AsSpan());
        return true;
    }

    /// <summary>Stores <paramref name="value"/> under <paramref name="key"/> (durable at the next commit).</summary>
    public void Put(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value)
    {
        using Store.MutationScope _ = _store.EnterMutation();
        lock (_lock) _overlay[key.ToArray()] = value.ToArray();
        _store.NoteMetadataChange();
    }

    /// <summary>Removes <paramref name="key"/>; returns whether it existed.</summary>
    public bool Delete(ReadOnlySpan<byte> key)
    {
        bool existed;
        try
        {
            existed = TryGet(key, out _);
        }
        catch (MetadataChecksumException)
        {
            existed = true; // a damaged record can still be removed (unlink of a damaged file)
        }
        using Store.MutationScope scope = _store.EnterMutation();
        lock (_lock) _overlay[key.ToArray()] = null;
        _store.NoteMetadataChange();
        return existed;
    }

    /// <summary>All entries whose key starts with <paramref name="prefix"/>, sorted by key.</summary>
    public List<KeyValuePair<byte[], byte[]>> List(ReadOnlySpan<byte> prefix)
    {
        var merged = new SortedDictionary<byte[], byte[]?>(ByteArrayComparer.Instance);
        using (LightningTransaction tx = _store.BeginRead())
        using (LightningCursor cursor = tx.CreateCursor(_db))
        {
            var (rc, k, v) = cursor.SetRange(prefix) == MDBResultCode.Success ? cursor.GetCurrent() : (MDBResultCode.NotFound, default, default);
            while (rc == MDBResultCode.Success && k.AsSpan().StartsWith(prefix))
            {
                merged[k.CopyToNewArray()] = Unseal(k.AsSpan(), v.AsSpan());
                (rc, k, v) = cursor.Next();
            }
        }
        lock (_lock)
        {
            foreach (var (k, v) in _overlay)
                if (k.AsSpan().StartsWith(prefix)) merged[k] = v;
        }
        var list = new List<KeyValuePair<byte[], byte[]>>(merged.Count);
        foreach (var (k, v) in merged)
            if (v != null) list.Add(new(k, v));
        return list;
    }

    /// <summary>Up to <paramref name="max"/> entries whose key starts with <paramref name="prefix"/> and sorts
    /// after <paramref name="after"/> (empty: from the start), sorted by key: readdir of a large directory
    /// page by page, resuming after the last name returned. Fewer than <paramref name="max"/> means the end.</summary>
    public List<KeyValuePair<byte[], byte[]>> List(ReadOnlySpan<byte> prefix, ReadOnlySpan<byte> after, int max)
    {
        byte[] start = [.. prefix, .. after];
        var merged = new SortedDictionary<byte[], byte[]?>(ByteArrayComparer.Instance);
        int deletesAhead = 0;
        lock (_lock)
        {
            foreach (var (k, v) in _overlay)
            {
                if (!k.AsSpan().StartsWith(prefix) || (after.Length > 0 && k.AsSpan().SequenceCompareTo(start) <= 0)) continue;
                merged[k] = v;
                if (v == null) deletesAhead++;
            }
        }
        // Enough stored entries that `max` survive the overlay's deletions and replacements.
        int want = max + deletesAhead + merged.Count;
        using (LightningTransaction tx = _store.BeginRead())
        using (LightningCursor cursor = tx.CreateCursor(_db))
        {
            var (rc, k, v) = cursor.SetRange(start) == MDBResultCode.Success ? cursor.GetCurrent() : (MDBResultCode.NotFound, default, default);
            int taken = 0;
            while (rc == MDBResultCode.Success && k.AsSpan().StartsWith(prefix) && taken < want)
            {
                if (after.Length == 0 || k.AsSpan().SequenceCompareTo(start) > 0)
                {
                    byte[] key = k.CopyToNewArray();
                    if (!merged.ContainsKey(key)) merged[key] = Unseal(key, v.AsSpan());
                    taken++;
                }
                (rc, k, v) = cursor.Next();
            }
        }
        var list = new List<KeyValuePair<byte[], byte[]>>(Math.Min(max, merged.Count));
        foreach (var (k, v) in merged)
        {
            if (list.Count == max) break;
            if (v != null) list.Add(new(k, v));
        }
        return list;
    }

    internal bool IsDirty { get { lock (_lock) return _overlay.Count > 0; } }

    internal Dictionary<byte[], byte[]?> SnapshotOverlay()
    {
        lock (_lock) return new Dictionary<byte[], byte[]?>(_overlay, ByteArrayComparer.Instance);
    }

    internal void WriteOverlay(LightningTransaction tx)
    {
        lock (_lock)
        {
            foreach (var (k, v) in _overlay)
            {
                if (v == null) tx.Delete(_db, k);
                else tx.Put(_db, k, Seal(k, v));
            }
        }
    }

    internal void ClearOverlay()
    {
        lock (_lock) _overlay = new(ByteArrayComparer.Instance);
    }

    internal byte[] Unseal(ReadOnlySpan<byte> key, ReadOnlySpan<byte> stored)
    {
        if (!Store.TryUnseal(key, stored, out ReadOnlySpan<byte> payload))
        {
            string where = $"{Name}/{Convert.ToHexString(key)}";
            _store.Log($"dedupfs store: {where}: metadata checksum mismatch");
            throw new MetadataChecksumException(where);
        }
        return payload.ToArray();
    }

    internal static byte[] Seal(ReadOnlySpan<byte> key, ReadOnlySpan<byte> payload)
    {
        var sealedValue = new byte[payload.Length + 4];
        payload.CopyTo(sealedValue);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(sealedValue.AsSpan(payload.Length), Crc32C.Compute(key, payload));
        return sealedValue;
    }
}
