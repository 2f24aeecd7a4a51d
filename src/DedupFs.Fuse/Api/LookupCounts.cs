using System.Collections.Concurrent;

namespace DedupFs.Fuse.Api;

/// <summary>
/// The kernel's references to each node, as the protocol counts them: one per entry reply
/// (LOOKUP, CREATE, MKNOD, MKDIR, SYMLINK, LINK, TMPFILE, READDIRPLUS), minus what FORGET and
/// BATCH_FORGET give back. A node the kernel no longer references (count 0) and that has no
/// name left can be freed. Thread-safe.
/// </summary>
public sealed class LookupCounts
{
    private readonly ConcurrentDictionary<ulong, long> _counts = new();

    /// <summary>Nodes the kernel currently holds at least one reference to.</summary>
    public int LiveNodes => _counts.Count;

    public long this[NodeId node] => _counts.TryGetValue(node.Value, out long count) ? count : 0;

    public void Add(NodeId node, ulong count = 1) =>
        _counts.AddOrUpdate(node.Value, static (_, c) => (long)c, static (_, old, c) => old + (long)c, count);

    /// <summary>Drops <paramref name="count"/> references; true when the node is no longer referenced.</summary>
    public bool Forget(NodeId node, ulong count)
    {
        while (true)
        {
            if (!_counts.TryGetValue(node.Value, out long old))
            {
                return true;
            }

            long updated = Math.Max(0, old - (long)count);
            if (updated == 0)
            {
                if (_counts.TryRemove(new KeyValuePair<ulong, long>(node.Value, old)))
                {
                    return true;
                }
            }
            else if (_counts.TryUpdate(node.Value, updated, old))
            {
                return false;
            }
        }
    }

    public IReadOnlyDictionary<ulong, long> Snapshot() => new Dictionary<ulong, long>(_counts);
}
