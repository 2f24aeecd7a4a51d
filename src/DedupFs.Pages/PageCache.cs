// The page cache: content pages in memory, keyed by PageId, within a byte budget.
//
// One copy per distinct page, however many mappings reference it: that is the memory win of
// content addressing (ten containers reading ten copies of libc cache it once).
//
// Eviction is CLOCK (second chance): frames sit on a ring; a hit sets the frame's referenced
// bit; the hand sweeps, clearing set bits and evicting the first frame whose bit is clear.
// It approximates LRU with no list to update on a hit, so a hit writes one byte.
//
// Frames live in one native arena (budget / 4096 frames), allocated once: no per-page objects
// and nothing for the GC to scan. The id -> frame index is an open-addressing table of frame
// numbers (2 per frame, linear probing) that only the filler writes; readers probe it without
// a lock and treat what they find as a hint, validated by the frame's own PageId and version,
// so a reader racing a fill can at worst miss. Nothing on any path allocates. A hit is
// lock-free:
//
//   reader                              filler / evictor (under _fillLock)
//   v1 = frame.Version (even?)          frame.Version++            (odd: frame unstable)
//   frame.PageId == id ?                map.Remove(old id)
//   copy 4096 bytes                     write bytes, frame.PageId = id
//   fence; v2 = frame.Version           frame.Version++            (even: stable)
//   v1 == v2 ? hit : miss               map[id] = frame
//
// A sequence lock: a reader that raced with a refill sees the version change and reports a
// miss, so it never returns torn or foreign bytes. Misses and fills are the slow path (a
// disk read is coming anyway) and serialise on one lock.
//
// Ids are reused after a page is freed, so the Pages layer invalidates a page's entry before
// its last reference is released, and inserts only pages it holds a reference to.
using System.Runtime.InteropServices;
using DedupFs.Store;

namespace DedupFs.Pages;

/// <summary>A CLOCK page cache with a byte budget. Thread-safe; hits allocate nothing.</summary>
public sealed unsafe class PageCache : IDisposable
{
    private struct Frame
    {
        public uint PageId;      // 0 = empty
        public int Version;      // odd while being refilled
        public int Referenced;   // CLOCK bit
    }

    private const nuint HugePage = 2 << 20;
    private readonly byte* _arena;
    private int _disposed;
    private readonly Frame[] _frames;
    private readonly int[] _where;     // frame + 1; 0 = empty, -1 = tombstone. Written under _fillLock.
    private int _count, _tombstones;
    private readonly Lock _fillLock = new();
    private int _hand;
    private long _hits, _misses;

    /// <summary>Creates a cache of <paramref name="budgetBytes"/> (rounded down to whole pages; 0 disables it).</summary>
    /// <param name="budgetBytes">the budget</param>
    /// <param name="prefault">touch the whole arena now, so that filling the cache later does not pay the
    /// kernel's page zeroing (a quarter of the CPU time of a first 1 GiB ingest); costs the budget in RSS at once</param>
    public PageCache(long budgetBytes, bool prefault = false)
    {
        int frames = (int)Math.Clamp(budgetBytes / PageContent.Size, 0, int.MaxValue / 2);
        _frames = new Frame[frames];
        _where = new int[Math.Max(16, (int)System.Numerics.BitOperations.RoundUpToPowerOf2((uint)Math.Max(frames, 1) * 2))];
        if (frames > 0)
        {
            nuint size = (nuint)frames * PageContent.Size;
            _arena = (byte*)NativeMemory.AlignedAlloc(size, HugePage);
            Interop.Madvise.TryHugePages(_arena, size);
            if (prefault)
                for (nuint off = 0; off < size; off += (nuint)PageContent.Size) _arena[off] = 0;
        }
    }

    /// <summary>Budget in bytes (frames x 4096).</summary>
    public long CapacityBytes => (long)_frames.Length * PageContent.Size;

    /// <summary>Pages cached now.</summary>
    public int Count => Volatile.Read(ref _count);

    /// <summary>Hits so far.</summary>
    public long Hits => Interlocked.Read(ref _hits);

    /// <summary>Misses so far.</summary>
    public long Misses => Interlocked.Read(ref _misses);

    /// <summary>Copies the cached page into <paramref name="dest"/> (4096 bytes) if present.</summary>
    public bool TryRead(PageId id, Span<byte> dest)
    {
        int f = FindFrame(id.Value);
        if (f >= 0)
        {
            ref Frame frame = ref _frames[f];
            int v1 = Volatile.Read(ref frame.Version);
            if ((v1 & 1) == 0 && Volatile.Read(ref frame.PageId) == id.Value)
            {
                new ReadOnlySpan<byte>(_arena + (long)f * PageContent.Size, PageContent.Size).CopyTo(dest);
                Interlocked.MemoryBarrier();
                if (Volatile.Read(ref frame.Version) == v1)
                {
                    if (frame.Referenced == 0) frame.Referenced = 1;
                    _hits++; // approximate under races; statistics only
                    return true;
                }
            }
        }
        _misses++;
        return false;
    }

    /// <summary>What <see cref="TryCompare"/> found.</summary>
    public enum CompareResult : byte
    {
        /// <summary>Not cached (or refilled while we looked): compare against the store.</summary>
        Miss,
        /// <summary>Cached, and its bytes equal the data.</summary>
        Equal,
        /// <summary>Cached, and its bytes differ from the data.</summary>
        Different,
    }

    /// <summary>Compares the cached copy of page <paramref name="id"/> with <paramref name="data"/> (4096 bytes) in place.</summary>
    /// <remarks>Inline dedup used to copy the frame out with <see cref="TryRead"/> and then compare the copy:
    /// that 4 KiB copy was a fifth of the duplicate-ingest CPU time. The same seqlock makes the in-place
    /// compare safe: an answer is given only if the frame held <paramref name="id"/>, unchanged, for the whole
    /// compare; a refill during it reports a miss, so a compare against torn bytes is never believed.</remarks>
    public CompareResult TryCompare(PageId id, ReadOnlySpan<byte> data)
    {
        int f = FindFrame(id.Value);
        if (f < 0) return CompareResult.Miss;
        ref Frame frame = ref _frames[f];
        int v1 = Volatile.Read(ref frame.Version);
        if ((v1 & 1) != 0 || Volatile.Read(ref frame.PageId) != id.Value) return CompareResult.Miss;
        bool equal = new ReadOnlySpan<byte>(_arena + (long)f * PageContent.Size, PageContent.Size).SequenceEqual(data);
        Interlocked.MemoryBarrier();
        if (Volatile.Read(ref frame.Version) != v1) return CompareResult.Miss;
        if (frame.Referenced == 0) frame.Referenced = 1;   // now shared by one more slot: worth keeping
        return equal ? CompareResult.Equal : CompareResult.Different;
    }

    /// <summary>Caches <paramref name="data"/> as page <paramref name="id"/>, evicting by CLOCK if full.</summary>
    public void Insert(PageId id, ReadOnlySpan<byte> data)
    {
        if (_frames.Length == 0) return;
        lock (_fillLock)
        {
            if (FindFrame(id.Value) >= 0) return; // pages never change: the cached copy is right
            int f = FindVictim();
            ref Frame frame = ref _frames[f];
            Interlocked.Increment(ref frame.Version);
            if (frame.PageId != 0) { RemoveEntry(frame.PageId, f); _count--; }
            data.CopyTo(new Span<byte>(_arena + (long)f * PageContent.Size, PageContent.Size));
            Volatile.Write(ref frame.PageId, id.Value);
            frame.Referenced = 0;
            Interlocked.Increment(ref frame.Version);
            AddEntry(id.Value, f);
            _count++;
        }
    }

    /// <summary>Drops page <paramref name="id"/> (it is being freed; its id will be reused).</summary>
    public void Invalidate(PageId id)
    {
        // Always under the fill lock: a lock-free "not cached" probe can miss an entry while a
        // filler rebuilds the id -> frame table (Rehash clears it first) or is between writing a
        // frame and indexing it, and a freed page's bytes would then be served when its id is reused.
        if (_frames.Length == 0) return;
        lock (_fillLock)
        {
            int f = FindFrame(id.Value);
            if (f < 0) return;
            ref Frame frame = ref _frames[f];
            Interlocked.Increment(ref frame.Version);
            RemoveEntry(id.Value, f);
            Volatile.Write(ref frame.PageId, 0u);
            Interlocked.Increment(ref frame.Version);
            _count--;
        }
    }

    /// <summary>Tests only: called inside a table rebuild, between clearing and refilling, under the fill lock.</summary>
    internal Action? TableClearedForTest;

    /// <summary>Whether page <paramref name="id"/> is cached.</summary>
    public bool Contains(PageId id) => FindFrame(id.Value) >= 0;

    private static int Start(uint id, int mask) => (int)((id * 0x9E3779B1u) >> 7) & mask;

    // The frame holding id, or -1. Lock-free; the answer is checked against the frame by callers
    // that copy (TryRead), and is exact under _fillLock.
    private int FindFrame(uint id)
    {
        int[] where = _where;
        int mask = where.Length - 1;
        for (int i = Start(id, mask), n = 0; n < where.Length; i = (i + 1) & mask, n++)
        {
            int e = Volatile.Read(ref where[i]);
            if (e == 0) return -1;
            if (e > 0 && Volatile.Read(ref _frames[e - 1].PageId) == id) return e - 1;
        }
        return -1;
    }

    private void AddEntry(uint id, int f)
    {
        int mask = _where.Length - 1;
        int i = Start(id, mask);
        while (_where[i] > 0) i = (i + 1) & mask;
        if (_where[i] < 0) _tombstones--;
        Volatile.Write(ref _where[i], f + 1);
    }

    private void RemoveEntry(uint id, int f)
    {
        int mask = _where.Length - 1;
        for (int i = Start(id, mask), n = 0; n < _where.Length && _where[i] != 0; i = (i + 1) & mask, n++)
        {
            if (_where[i] != f + 1) continue;
            Volatile.Write(ref _where[i], -1);
            if (++_tombstones > _where.Length / 4) Rehash();
            return;
        }
    }

    // Rebuilds the index in place from the frames. A reader probing meanwhile may miss (then
    // reads from the store); it can never be handed a wrong frame.
    private void Rehash()
    {
        Array.Clear(_where);
        _tombstones = 0;
        TableClearedForTest?.Invoke();
        for (int f = 0; f < _frames.Length; f++)
        {
            uint id = _frames[f].PageId;
            if (id != 0 && (_frames[f].Version & 1) == 0) AddEntry(id, f);
        }
    }

    private int FindVictim()
    {
        while (true)
        {
            int f = _hand;
            _hand = f + 1 == _frames.Length ? 0 : f + 1;
            ref Frame frame = ref _frames[f];
            if (frame.PageId == 0) return f;
            if (frame.Referenced != 0) { frame.Referenced = 0; continue; }
            return f;
        }
    }

    /// <summary>Frees the arena.</summary>
    public void Dispose()
    {
        if (_arena != null && Interlocked.Exchange(ref _disposed, 1) == 0) NativeMemory.AlignedFree(_arena);
    }
}
