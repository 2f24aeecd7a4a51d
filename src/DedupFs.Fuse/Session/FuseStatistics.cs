using DedupFs.Fuse.Protocol;

namespace DedupFs.Fuse.Session;

/// <summary>
/// Requests served and errors answered, per opcode, since the session started. One
/// interlocked increment per request, no allocation; read at any time (stats files, tests).
/// </summary>
public sealed class FuseStatistics
{
    private const int Slots = (int)FuseOpcode.CopyFileRange64 + 2; // the last slot counts unknown opcodes
    private readonly long[] _requests = new long[Slots];
    private readonly long[] _errors = new long[Slots];
    private long _malformed;
    private long _undelivered;

    /// <summary>Requests that were malformed (answered EIO or dropped).</summary>
    public long Malformed => Interlocked.Read(ref _malformed);

    /// <summary>Replies the kernel refused because the caller had gone (interrupted).</summary>
    public long Undelivered => Interlocked.Read(ref _undelivered);

    public long Requests(FuseOpcode opcode) => Interlocked.Read(ref _requests[Slot((uint)opcode)]);

    public long Errors(FuseOpcode opcode) => Interlocked.Read(ref _errors[Slot((uint)opcode)]);

    public long TotalRequests => _requests.Sum(n => Interlocked.Read(ref n));

    /// <summary>(opcode name, requests, errors) for every opcode seen at least once.</summary>
    public IEnumerable<(string Name, long Requests, long Errors)> Snapshot()
    {
        for (int i = 0; i < Slots; i++)
        {
            long requests = Interlocked.Read(ref _requests[i]);
            if (requests > 0)
            {
                yield return (i == Slots - 1 ? "UNKNOWN" : OpcodeTable.NameOf((uint)i), requests, Interlocked.Read(ref _errors[i]));
            }
        }
    }

    internal void Count(uint opcode, bool error)
    {
        int slot = Slot(opcode);
        Interlocked.Increment(ref _requests[slot]);
        if (error)
        {
            Interlocked.Increment(ref _errors[slot]);
        }
    }

    internal void CountMalformed() => Interlocked.Increment(ref _malformed);

    internal void CountUndelivered() => Interlocked.Increment(ref _undelivered);

    private static int Slot(uint opcode) => opcode < Slots - 1 ? (int)opcode : Slots - 1;
}
