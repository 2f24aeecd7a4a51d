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
using System.Collections.Immutable;
using LightningDB;

namespace DedupFs.Store;

/// <summary>A transactional table of blobs keyed by bytes.</summary>
public sealed class BlobTable
{
    // One pending change: Value null = deleted. Ordered by key in the overlay.
    private sealed class Pending(byte[] key, byte[]? value)
    {
        public readonly byte[] Key = key;
        public byte[]? Value = value;
    }

    private sealed class PendingComparer : IComparer<Pending>
    {
        public static readonly PendingComparer Instance = new();

        public int Compare(Pending? x, Pending? y) => x!.Key.AsSpan().SequenceCompareTo(y!.Key);
    }

    private readonly Store _store;
    private readonly LightningDatabase _db;
    private readonly Lock _lock = new();                // guards _overlay
    // The pending changes, ordered by key like LMDB, so a prefix listing finds its first entry
    // by binary search and walks only the entries it returns (O((log n) * k)) instead of every
    // pending change of the table: a 100k-entry directory created between two commits was
    // quadratic to list. An AVL tree with positional access (ImmutableSortedSet) rather than
    // SortedSet, whose GetViewBetween counts its whole range on creation.
    private ImmutableSortedSet<Pending> _overlay = ImmutableSortedSet.Create<Pending>(PendingComparer.Instance);

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
        var probe = new Pending(key.ToArray(), null);
        lock (_lock)
        {
            if (_overlay.TryGetValue(probe, out Pending? pending))
            {
                value = pending.Value ?? [];
                return pending.Value != null;
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
        SetPending(key.ToArray(), value.ToArray());
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
        SetPending(key.ToArray(), null);
        _store.NoteMetadataChange();
        return existed;
    }

    private void SetPending(byte[] key, byte[]? value)
    {
        var entry = new Pending(key, value);
        lock (_lock)
        {
            if (_overlay.TryGetValue(entry, out Pending? existing)) existing.Value = value;
            else _overlay = _overlay.Add(entry);
        }
    }

    /// <summary>All entries whose key starts with <paramref name="prefix"/>, sorted by key.</summary>
    public List<KeyValuePair<byte[], byte[]>> List(ReadOnlySpan<byte> prefix) => Merge(prefix, [], int.MaxValue);

    /// <summary>Up to <paramref name="max"/> entries whose key starts with <paramref name="prefix"/> and sorts
    /// after <paramref name="after"/> (empty: from the start), sorted by key: readdir of a large directory
    /// page by page, resuming after the last name returned. Fewer than <paramref name="max"/> means the end.</summary>
    public List<KeyValuePair<byte[], byte[]>> List(ReadOnlySpan<byte> prefix, ReadOnlySpan<byte> after, int max) =>
        Merge(prefix, after, max);

    // A two-way merge of two sorted streams over [prefix+after, end of prefix): the committed
    // entries (LMDB cursor) and the pending ones (ordered overlay, copied out under the lock up
    // to `max` live entries plus the deletions met on the way). On equal keys the overlay wins;
    // an overlay deletion hides the committed entry.
    private List<KeyValuePair<byte[], byte[]>> Merge(ReadOnlySpan<byte> prefix, ReadOnlySpan<byte> after, int max)
    {
        byte[] start = [.. prefix, .. after];
        bool exclusive = after.Length > 0;
        var pending = new List<(byte[] Key, byte[]? Value)>();
        lock (_lock)
        {
            ImmutableSortedSet<Pending> set = _overlay;
            int i = set.IndexOf(new Pending(start, null));
            i = i < 0 ? ~i : exclusive ? i + 1 : i;
            for (int live = 0; i < set.Count && live < max; i++)
            {
                Pending p = set[i];
                if (!p.Key.AsSpan().StartsWith(prefix)) break;
                pending.Add((p.Key, p.Value));
                if (p.Value != null) live++;
            }
        }

        var list = new List<KeyValuePair<byte[], byte[]>>(Math.Min(max, 1024));
        int pi = 0;
        using (LightningTransaction tx = _store.BeginRead())
        using (LightningCursor cursor = tx.CreateCursor(_db))
        {
            var (rc, k, v) = cursor.SetRange(start) == MDBResultCode.Success ? cursor.GetCurrent() : (MDBResultCode.NotFound, default, default);
            if (rc == MDBResultCode.Success && exclusive && k.AsSpan().SequenceEqual(start)) (rc, k, v) = cursor.Next();
            while (list.Count < max)
            {
                bool haveStored = rc == MDBResultCode.Success && k.AsSpan().StartsWith(prefix);
                bool havePending = pi < pending.Count;
                if (!haveStored && !havePending) break;
                int order = !haveStored ? 1 : !havePending ? -1 : k.AsSpan().SequenceCompareTo(pending[pi].Key) switch { < 0 => -1, 0 => 0, _ => 1 };
                if (order < 0)
                {
                    list.Add(new(k.CopyToNewArray(), Unseal(k.AsSpan(), v.AsSpan())));
                    (rc, k, v) = cursor.Next();
                    continue;
                }
                if (order == 0) (rc, k, v) = cursor.Next(); // the pending change replaces it
                var (pk, pv) = pending[pi++];
                if (pv != null) list.Add(new(pk, pv));
            }
        }
        return list;
    }

    internal bool IsDirty { get { lock (_lock) return _overlay.Count > 0; } }

    internal Dictionary<byte[], byte[]?> SnapshotOverlay()
    {
        lock (_lock)
        {
            var copy = new Dictionary<byte[], byte[]?>(_overlay.Count, ByteArrayComparer.Instance);
            foreach (Pending p in _overlay) copy[p.Key] = p.Value;
            return copy;
        }
    }

    internal void WriteOverlay(LightningTransaction tx)
    {
        lock (_lock)
        {
            foreach (Pending p in _overlay)
            {
                if (p.Value == null) tx.Delete(_db, p.Key);
                else tx.Put(_db, p.Key, Seal(p.Key, p.Value));
            }
        }
    }

    internal void ClearOverlay()
    {
        lock (_lock) _overlay = _overlay.Clear();
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
