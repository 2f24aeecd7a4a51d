// The in-memory table of every page slot's PageRecord: refcount, CRC32C, xxHash64.
//
// Layout. Records live in segments of 65536 (1 MiB each) under a directory allocated once for
// the whole 32-bit id space (65536 references, 512 KiB), so a segment never moves and a reader
// needs no lock to find a record: the directory entry is published before any id in the
// segment is handed out. 16 bytes per unique page is the whole per-page cost of this table.
//
// Dirty tracking. Each segment has one bit per chunk of 256 records, the unit the commit writes
// to the "pages" sub-database. Bits are set with Interlocked.Or by whoever changes a record
// and cleared by the commit when it copies the dirty chunks, with every page mutator
// excluded (Store's page gate); a failed commit sets them again.
//
// Slot life cycle (the durability rule "a freed slot is reused only after the metadata that
// freed it is durable"):
//
//     free --Allocate--> live (refcount >= 1) --refcount reaches 0--> pending
//       ^                                                                |
//       +-------------- commit that recorded refcount 0 is durable -----+
//
// A pending slot still holds bytes that the last durable metadata may reference; writing a new
// page over it before that metadata is superseded would turn a crash into a checksum error.
// Free slots below the high-water mark are reused lowest-first-out of a stack; beyond it the
// file grows.
namespace DedupFs.Store;

internal sealed class PageTable
{
    public const int SegmentShift = 16;
    public const int SegmentSize = 1 << SegmentShift;
    private const int ChunksPerSegment = SegmentSize / StoreFormat.PagesPerChunk; // 256
    private const int MaxSegments = 1 << (32 - SegmentShift);

    private sealed class Segment
    {
        public readonly PageRecord[] Records = new PageRecord[SegmentSize];
        public readonly ulong[] DirtyChunks = new ulong[ChunksPerSegment / 64];
    }

    private readonly Segment?[] _segments = new Segment?[MaxSegments];
    private readonly Lock _allocLock = new();   // guards _free, _pending, _highWater growth
    private readonly Stack<uint> _free = new();
    private List<uint> _pending = [];
    private long _highWater;

    /// <summary>Number of slots ever allocated; pages.dat holds at least this many.</summary>
    public long HighWater => Volatile.Read(ref _highWater);

    /// <summary>Slots waiting for a durable commit before reuse.</summary>
    public int PendingCount { get { lock (_allocLock) return _pending.Count; } }

    /// <summary>Slots free for reuse now.</summary>
    public int FreeCount { get { lock (_allocLock) return _free.Count; } }

    /// <summary>The record of <paramref name="slot"/> (which must be below the high-water mark).</summary>
    public ref PageRecord this[long slot] => ref _segments[slot >> SegmentShift]!.Records[slot & (SegmentSize - 1)];

    /// <summary>Hint: starts loading <paramref name="slot"/>'s record into the CPU cache (batched content-index
    /// probes). Ignores slots that do not exist.</summary>
    public unsafe void Prefetch(long slot)
    {
        if (!System.Runtime.Intrinsics.X86.Sse.IsSupported || (ulong)slot >= (ulong)HighWater) return;
        Segment? seg = Volatile.Read(ref _segments[slot >> SegmentShift]);
        if (seg == null) return;
        System.Runtime.Intrinsics.X86.Sse.Prefetch0(
            System.Runtime.CompilerServices.Unsafe.AsPointer(ref seg.Records[slot & (SegmentSize - 1)]));
    }

    /// <summary>Marks the chunk holding <paramref name="slot"/> for the next commit.</summary>
    public void MarkDirty(long slot)
    {
        Segment seg = _segments[slot >> SegmentShift]!;
        int chunk = (int)((slot & (SegmentSize - 1)) / StoreFormat.PagesPerChunk);
        ref ulong word = ref seg.DirtyChunks[chunk >> 6];
        ulong bit = 1UL << (chunk & 63);
        if ((Volatile.Read(ref word) & bit) == 0) Interlocked.Or(ref word, bit);
    }

    /// <summary>Takes a free slot, or grows the table; the record is zero until the caller fills it.</summary>
    public long Allocate()
    {
        lock (_allocLock)
        {
            if (_free.TryPop(out uint slot)) return slot;
            long next = _highWater;
            if (next >= uint.MaxValue - 1) throw new StoreException("page store full (2^32 slots)", 28 /* ENOSPC */);
            EnsureSegment(next);
            Volatile.Write(ref _highWater, next + 1);
            return next;
        }
    }

    /// <summary>Takes <paramref name="slots"/>.Length slots: free ones first (lowest first), then a
    /// contiguous run at the end of the file, so a batch of new pages is mostly one pwrite.</summary>
    public void AllocateMany(Span<long> slots)
    {
        lock (_allocLock)
        {
            int k = 0;
            while (k < slots.Length && _free.TryPop(out uint slot)) slots[k++] = slot;
            if (k == slots.Length) return;
            long next = _highWater, end = next + (slots.Length - k);
            if (end >= uint.MaxValue - 1) throw new StoreException("page store full (2^32 slots)", 28 /* ENOSPC */);
            for (long s = next; s < end; s += SegmentSize) EnsureSegment(s);
            EnsureSegment(end - 1);
            for (; k < slots.Length; k++) slots[k] = next++;
            Volatile.Write(ref _highWater, end);
        }
    }

    /// <summary>Queues a slot whose refcount reached 0 for reuse after the next durable commit.</summary>
    public void FreeAfterCommit(long slot)
    {
        lock (_allocLock) _pending.Add((uint)slot);
    }

    /// <summary>Takes the slots freed so far (the commit that is snapshotting the metadata records their
    /// refcount 0); slots freed from now on wait for the next commit.</summary>
    public List<uint> TakePending()
    {
        lock (_allocLock)
        {
            List<uint> taken = _pending;
            _pending = [];
            return taken;
        }
    }

    /// <summary>Called once the commit whose snapshot recorded <paramref name="slots"/> free is durable.</summary>
    public void Promote(List<uint> slots)
    {
        lock (_allocLock)
            foreach (uint slot in slots) _free.Push(slot);
    }

    /// <summary>A commit that took <paramref name="slots"/> failed: they wait for the next one again.</summary>
    public void ReturnPending(List<uint> slots)
    {
        lock (_allocLock) _pending.AddRange(slots);
    }

    /// <summary>Sets up the table from loaded records (store open), rebuilding the free stack.</summary>
    public void InitHighWater(long highWater)
    {
        for (long s = 0; s < highWater; s += SegmentSize) EnsureSegment(s);
        _highWater = highWater;
    }

    /// <summary>Rebuilds the free stack from refcount-0 slots below the high-water mark.</summary>
    public void RebuildFreeList()
    {
        lock (_allocLock)
        {
            _free.Clear();
            _pending.Clear();
            // Push highest first so the lowest slots are reused first: keeps pages.dat dense.
            for (long s = _highWater - 1; s >= 0; s--)
                if (this[s].RefCount == 0) _free.Push((uint)s);
        }
    }

    /// <summary>Chunks changed since the last commit, in order.</summary>
    public List<long> DirtyChunkList()
    {
        var list = new List<long>();
        long hw = HighWater;
        for (long segNo = 0; segNo << SegmentShift < hw; segNo++)
        {
            Segment seg = _segments[segNo]!;
            for (int w = 0; w < seg.DirtyChunks.Length; w++)
            {
                ulong bits = seg.DirtyChunks[w];
                while (bits != 0)
                {
                    int b = System.Numerics.BitOperations.TrailingZeroCount(bits);
                    bits &= bits - 1;
                    list.Add(segNo * ChunksPerSegment + w * 64 + b);
                }
            }
        }
        return list;
    }

    /// <summary>Clears all dirty bits (after a successful commit).</summary>
    public void ClearDirty()
    {
        long hw = HighWater;
        for (long segNo = 0; segNo << SegmentShift < hw; segNo++)
            Array.Clear(_segments[segNo]!.DirtyChunks);
    }

    /// <summary>The records of chunk <paramref name="chunk"/> as bytes (little-endian PageRecords).</summary>
    public ReadOnlySpan<byte> ChunkBytes(long chunk)
    {
        long first = chunk * StoreFormat.PagesPerChunk;
        Segment seg = _segments[first >> SegmentShift]!;
        return System.Runtime.InteropServices.MemoryMarshal.AsBytes(
            seg.Records.AsSpan((int)(first & (SegmentSize - 1)), StoreFormat.PagesPerChunk));
    }

    /// <summary>Loads chunk bytes read from the metadata store.</summary>
    public void LoadChunk(long chunk, ReadOnlySpan<byte> bytes)
    {
        long first = chunk * StoreFormat.PagesPerChunk;
        EnsureSegment(first);
        Segment seg = _segments[first >> SegmentShift]!;
        var dest = System.Runtime.InteropServices.MemoryMarshal.AsBytes(
            seg.Records.AsSpan((int)(first & (SegmentSize - 1)), StoreFormat.PagesPerChunk));
        bytes[..Math.Min(bytes.Length, dest.Length)].CopyTo(dest);
    }

    private void EnsureSegment(long slot)
    {
        long segNo = slot >> SegmentShift;
        if (_segments[segNo] == null) Volatile.Write(ref _segments[segNo], new Segment());
    }
}
