using System.Runtime.CompilerServices;
using DedupFs.Fuse.Interop;

namespace DedupFs.Fuse.Api;

/// <summary>
/// Where a READ handler puts its answer. Bytes are copied (or written in place through
/// <see cref="Reserve"/>) into the worker's reply buffer; runs of zeros — holes — cost nothing:
/// <see cref="AppendZeros"/> points the reply's writev at a shared page of zeros instead of
/// clearing memory. The reply reaches the kernel as one writev over these segments, in order.
/// </summary>
public unsafe ref struct ReadBuffer
{
    private readonly Span<byte> _inline;
    private readonly Libc.IoVec* _segments;
    private readonly int _capacity;
    private int _segmentCount;
    private int _inlineUsed;
    private bool _lastIsZeros;

    internal ReadBuffer(Span<byte> inlineBuffer, int size, Libc.IoVec* segments, int capacity)
    {
        _inline = inlineBuffer;
        Size = size;
        _segments = segments;
        _capacity = capacity;
    }

    /// <summary>Bytes the kernel asked for: the most this reply may hold.</summary>
    public int Size { get; }

    /// <summary>Bytes produced so far; fewer than <see cref="Size"/> at the end means end of file.</summary>
    public int Length { get; private set; }

    public readonly int Remaining => Size - Length;

    internal readonly int SegmentCount => _segmentCount;

    /// <summary>True while every byte is in the reply buffer in order (no zero segments).</summary>
    internal readonly bool IsContiguous => _segments == null || (_segmentCount <= 1 && !_lastIsZeros);

    /// <summary>Copies <paramref name="data"/> into the reply.</summary>
    public void Append(ReadOnlySpan<byte> data) => data.CopyTo(Reserve(data.Length));

    /// <summary>Returns room for the next <paramref name="count"/> bytes, to be written in place.</summary>
    public Span<byte> Reserve(int count)
    {
        if ((uint)count > (uint)Remaining)
        {
            ThrowTooMuch(count);
        }

        var span = _inline.Slice(_inlineUsed, count);
        if (_segments != null)
        {
            // Scatter mode: the reply buffer is pinned by the session, so its address is stable.
            AddSegment((byte*)Unsafe.AsPointer(ref span.GetPinnableReference()), count, zeros: false);
        }

        _inlineUsed += count;
        Length += count;
        return span;
    }

    /// <summary>Adds <paramref name="count"/> zero bytes without touching memory.</summary>
    public void AppendZeros(int count)
    {
        if ((uint)count > (uint)Remaining)
        {
            ThrowTooMuch(count);
        }

        if (count == 0)
        {
            return;
        }

        if (_segments == null || _segmentCount >= _capacity - 1 || count > ZeroPage.Length)
        {
            // Out of segments (or a run longer than the zero page): fall back to clearing.
            Reserve(count).Clear();
            return;
        }

        AddSegment(ZeroPage.Pointer, count, zeros: true);
        Length += count;
    }

    private void AddSegment(byte* start, int count, bool zeros)
    {
        if (count == 0)
        {
            return;
        }

        if (_segmentCount > 0)
        {
            ref var last = ref _segments[_segmentCount - 1];
            if (zeros == _lastIsZeros && (zeros ? (int)last.Length + count <= ZeroPage.Length : (byte*)last.Base + last.Length == start))
            {
                last.Length += (nuint)count;
                return;
            }
        }

        if (_segmentCount == _capacity)
        {
            throw new InvalidOperationException("read reply has too many segments"); // unreachable: zeros fall back first
        }

        _segments[_segmentCount++] = new Libc.IoVec { Base = start, Length = (nuint)count };
        _lastIsZeros = zeros;
    }

    private static void ThrowTooMuch(int count) =>
        throw new ArgumentOutOfRangeException(nameof(count), count, "more bytes than the READ asked for");
}

/// <summary>
/// One shared run of zero bytes as long as the largest request, mapped read-only and never
/// written: every page of it is the kernel's single zero page, so copying from it into a
/// reply reads one physical, cache-hot page and the run costs no memory.
/// </summary>
internal static unsafe class ZeroPage
{
    public const int Length = 1 << 20;

    private static byte[]? s_fallback; // keeps the pinned fallback array alive

    public static readonly byte* Pointer = Map();

    private static byte* Map()
    {
        const int ProtRead = 1, MapPrivate = 2, MapAnonymous = 0x20;
        void* p = Tmds.Linux.LibC.mmap(null, Length, ProtRead, MapPrivate | MapAnonymous, -1, 0);
        if (p == (void*)-1)
        {
            // Without the mapping a pinned array of zeros does the same job, at 1 MiB of memory.
            s_fallback = GC.AllocateArray<byte>(Length, pinned: true);
            return (byte*)Unsafe.AsPointer(ref s_fallback[0]);
        }

        return (byte*)p;
    }
}
