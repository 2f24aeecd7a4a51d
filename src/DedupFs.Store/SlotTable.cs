// One mapping's slot table in memory: page index -> PageId (0 = hole), plus the mapping's
// length in bytes. The Store owns it (it persists it); the Pages layer's Mapping drives it.
//
// Layout. Chunks of 1024 ids (4 KiB, covering 4 MiB of file) under a directory that grows by
// copy-and-publish. A chunk never moves once created, so a reader holding the Pages layer's
// stripe lock for an index reads its id with no further locking. A chunk is the unit written
// to the "maps" sub-database; each carries its own dirty flag, set by the writer and cleared
// by the commit (which excludes writers through the Store gate).
//
// Memory: 4 bytes per page slot of every loaded mapping, 2 MiB per GiB of file. Cloning a GiB
// copies 1 MiB of ids, which is why a clone is fast. A chunk's id array starts at 16 entries
// and doubles up to 1024 as the file grows, so a small file costs ~100 bytes, not 4 KiB.
//
// Growing a chunk while other threads write other indexes of it (they hold other stripes):
// the grower (under _growLock) swaps the array reference to null with a full fence, copies
// the old array, then publishes the bigger one. A writer stores its id with a full fence
// (Interlocked.Exchange) and then re-reads the reference: if it is no longer the array it
// wrote to, it writes again into the current one. Either the grower's copy saw the write, or
// the writer sees the swap; no write is lost. Readers (which hold the stripe of their index,
// so no one changes that index) wait out the brief null.
//
// Thread safety: Get/Set/MarkDirty may run concurrently for different indexes; callers
// serialise access to one index (the Pages layer's stripe locks).
namespace DedupFs.Store;

/// <summary>A mapping's slot table: index -> page id, and its length in bytes.</summary>
public sealed class SlotTable
{
    internal sealed class Chunk(int capacity)
    {
        public uint[]? IdsOrNull = new uint[capacity];   // null only while being grown
        public volatile bool Dirty;
        public bool Persisted;   // a "maps" record exists for it in the last commit

        public const int MinCapacity = 16;

        /// <summary>The current id array (waiting out a concurrent grow).</summary>
        public uint[] Ids
        {
            get
            {
                uint[]? ids = Volatile.Read(ref IdsOrNull);
                if (ids != null) return ids;
                var spin = new SpinWait();
                while ((ids = Volatile.Read(ref IdsOrNull)) == null) spin.SpinOnce();
                return ids;
            }
        }

        public static int CapacityFor(int need) =>
            (int)Math.Min(StoreFormat.SlotsPerMapChunk, System.Numerics.BitOperations.RoundUpToPowerOf2((uint)Math.Max(need, MinCapacity)));
    }

    private readonly Lock _growLock = new();
    private Chunk?[] _chunks;
    private long _length;
    internal volatile bool LengthDirty;

    /// <summary>The inode this mapping belongs to.</summary>
    public ulong Inode { get; }

    internal SlotTable(ulong inode, Chunk?[] chunks, long length)
    {
        Inode = inode;
        _chunks = chunks;
        _length = length;
    }

    /// <summary>Length of the mapping in bytes (the file size the Pages layer reads up to).</summary>
    public long Length
    {
        get => Volatile.Read(ref _length);
        set
        {
            Volatile.Write(ref _length, value);
            LengthDirty = true;
        }
    }

    /// <summary>Raises the length to at least <paramref name="atLeast"/> (atomic max).</summary>
    public void ExtendLength(long atLeast)
    {
        long cur;
        while ((cur = Volatile.Read(ref _length)) < atLeast)
        {
            if (Interlocked.CompareExchange(ref _length, atLeast, cur) == cur)
            {
                LengthDirty = true;
                return;
            }
        }
    }

    /// <summary>Number of page indexes the chunk directory covers (an upper bound on used indexes).</summary>
    public long Capacity => (long)Volatile.Read(ref _chunks).Length << StoreFormat.MapChunkShift;

    /// <summary>The page at <paramref name="index"/>, or <see cref="PageId.None"/> for a hole.</summary>
    public PageId Get(long index)
    {
        Chunk?[] dir = Volatile.Read(ref _chunks);
        long c = index >> StoreFormat.MapChunkShift;
        if (c >= dir.Length) return PageId.None;
        Chunk? chunk = dir[c];
        if (chunk == null) return PageId.None;
        uint[] ids = chunk.Ids;
        int offset = (int)(index & (StoreFormat.SlotsPerMapChunk - 1));
        return offset < ids.Length ? new PageId(Volatile.Read(ref ids[offset])) : PageId.None;
    }

    /// <summary>Points <paramref name="index"/> at <paramref name="page"/> and marks the chunk dirty.
    /// Refcounts are the caller's business.</summary>
    public void Set(long index, PageId page)
    {
        long c = index >> StoreFormat.MapChunkShift;
        int offset = (int)(index & (StoreFormat.SlotsPerMapChunk - 1));
        Chunk? chunk = ChunkAt(c, create: !page.IsNone, need: offset + 1);
        if (chunk == null) return; // setting a hole where nothing exists: nothing to record
        while (true)
        {
            uint[] ids = chunk.Ids;
            if (offset >= ids.Length)
            {
                if (page.IsNone) return;  // beyond the array is a hole already
                Grow(chunk, offset + 1);
                continue;
            }
            Interlocked.Exchange(ref ids[offset], page.Value);   // full fence before the re-check
            if (ReferenceEquals(Volatile.Read(ref chunk.IdsOrNull), ids)) break;
        }
        chunk.Dirty = true;
    }

    /// <summary>Makes <paramref name="chunk"/>'s array hold at least <paramref name="need"/> ids.</summary>
    private void Grow(Chunk chunk, int need)
    {
        lock (_growLock)
        {
            uint[] old = chunk.IdsOrNull!;  // only growers (holding _growLock) null it
            if (old.Length >= need) return;
            var bigger = new uint[Chunk.CapacityFor(need)];
            Interlocked.Exchange(ref chunk.IdsOrNull, null);    // writers now retry; full fence
            old.CopyTo(bigger, 0);
            Volatile.Write(ref chunk.IdsOrNull, bigger);
        }
    }

    /// <summary>Index of the last non-hole slot, or -1.</summary>
    public long LastUsedIndex()
    {
        Chunk?[] dir = Volatile.Read(ref _chunks);
        for (long c = dir.Length - 1; c >= 0; c--)
        {
            Chunk? chunk = dir[c];
            if (chunk == null) continue;
            int i = chunk.Ids.AsSpan().LastIndexOfAnyExcept(0u);
            if (i >= 0) return (c << StoreFormat.MapChunkShift) + i;
        }
        return -1;
    }

    /// <summary>Calls <paramref name="visit"/> for every non-hole slot, in index order.</summary>
    public void ForEachPage(Action<long, PageId> visit)
    {
        Chunk?[] dir = Volatile.Read(ref _chunks);
        for (long c = 0; c < dir.Length; c++)
        {
            Chunk? chunk = dir[c];
            if (chunk == null) continue;
            uint[] ids = chunk.Ids;
            for (int i = 0; i < ids.Length; i++)
            {
                uint id = Volatile.Read(ref ids[i]);
                if (id != 0) visit((c << StoreFormat.MapChunkShift) + i, new PageId(id));
            }
        }
    }

    /// <summary>Copies ids of <paramref name="count"/> slots starting at <paramref name="first"/> into <paramref name="dest"/>.</summary>
    public void CopyIds(long first, Span<uint> dest)
    {
        for (int k = 0; k < dest.Length;)
        {
            long index = first + k;
            long c = index >> StoreFormat.MapChunkShift;
            int offset = (int)(index & (StoreFormat.SlotsPerMapChunk - 1));
            int n = Math.Min(dest.Length - k, StoreFormat.SlotsPerMapChunk - offset);
            Chunk? chunk = ChunkAt(c, create: false, need: 0);
            Span<uint> target = dest.Slice(k, n);
            if (chunk == null) target.Clear();
            else
            {
                uint[] ids = chunk.Ids;
                int have = Math.Clamp(ids.Length - offset, 0, n);
                if (have > 0) ids.AsSpan(offset, have).CopyTo(target);
                target[have..].Clear();
            }
            k += n;
        }
    }

    /// <summary>Points [first, first+ids.Length) at <paramref name="ids"/>, returning the previous ids in
    /// <paramref name="previous"/>; chunk by chunk, for clones. Refcounts are the caller's business.</summary>
    public void Exchange(long first, ReadOnlySpan<uint> ids, Span<uint> previous)
    {
        for (int k = 0; k < ids.Length;)
        {
            long index = first + k;
            int offset = (int)(index & (StoreFormat.SlotsPerMapChunk - 1));
            int n = Math.Min(ids.Length - k, StoreFormat.SlotsPerMapChunk - offset);
            ReadOnlySpan<uint> src = ids.Slice(k, n);
            Span<uint> prev = previous.Slice(k, n);
            bool any = src.ContainsAnyExcept(0u);
            Chunk? chunk = ChunkAt(index >> StoreFormat.MapChunkShift, create: any, need: offset + n);
            if (chunk == null) prev.Clear();
            else
            {
                // The caller holds the stripes of this range: only a grow can move these ids,
                // and it copies them, so `previous` read once is right whatever array we end in.
                uint[] current = chunk.Ids;
                int have = Math.Clamp(current.Length - offset, 0, n);
                if (have > 0) current.AsSpan(offset, have).CopyTo(prev);
                prev[have..].Clear();
                if (any || have > 0)
                {
                    while (true)
                    {
                        uint[] target = chunk.Ids;
                        if (target.Length < offset + n)
                        {
                            if (!any && prev.IndexOfAnyExcept(0u) < 0) break;   // holes over holes
                            Grow(chunk, offset + n);
                            continue;
                        }
                        src.CopyTo(target.AsSpan(offset, n));
                        Interlocked.MemoryBarrier();
                        if (ReferenceEquals(Volatile.Read(ref chunk.IdsOrNull), target)) break;
                    }
                    chunk.Dirty = true;
                }
            }
            k += n;
        }
    }

    internal Chunk?[] Chunks => Volatile.Read(ref _chunks);

    private Chunk? ChunkAt(long c, bool create, int need)
    {
        Chunk?[] dir = Volatile.Read(ref _chunks);
        if (c < dir.Length && dir[c] is { } existing) return existing;
        if (!create) return null;
        lock (_growLock)
        {
            dir = _chunks;
            if (c >= dir.Length)
            {
                var bigger = new Chunk?[Math.Max(c + 1, dir.Length * 2)];
                Array.Copy(dir, bigger, dir.Length);
                dir = bigger;
            }
            Chunk chunk = dir[c] ??= new Chunk(Chunk.CapacityFor(need));
            Volatile.Write(ref _chunks, dir);
            return chunk;
        }
    }
}
