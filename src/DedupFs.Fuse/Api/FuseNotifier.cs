using System.Buffers;
using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using DedupFs.Fuse.Interop;
using DedupFs.Fuse.Protocol;

namespace DedupFs.Fuse.Api;

/// <summary>
/// Sends unsolicited notifications to the kernel: invalidate an inode's cached data or
/// attributes, invalidate or delete a directory entry, push data into the kernel's cache
/// (store), or ask for it back (retrieve).
/// </summary>
/// <remarks>
/// Notifications are queued and written by one dedicated thread, never from the caller. The
/// kernel may need locks held by a process that is itself waiting for one of our replies (an
/// entry invalidation takes the parent directory's lock, for instance), so writing from inside
/// a request handler could deadlock; from the queue it only waits.
/// </remarks>
public sealed class FuseNotifier : IDisposable
{
    /// <summary>A notifier with no connection: every notification is refused.</summary>
    public static readonly FuseNotifier Disconnected = new();

    private static readonly int OutHeaderSize = Unsafe.SizeOf<FuseOutHeader>();

    private readonly BlockingCollection<(byte[] Buffer, int Length)>? _queue;
    private readonly Thread? _thread;
    private readonly int _fd = -1;
    private readonly IFuseLogger _log = StderrFuseLogger.Instance;
    private long _nextRetrieveUnique;
    private int _pending;

    private FuseNotifier()
    {
    }

    internal FuseNotifier(int fd, IFuseLogger log)
    {
        _fd = fd;
        _log = log;
        _queue = new BlockingCollection<(byte[], int)>(new ConcurrentQueue<(byte[], int)>());
        _thread = new Thread(Run) { IsBackground = true, Name = "fuse-notify" };
        _thread.Start();
    }

    public bool IsConnected => _queue is not null && !_queue.IsAddingCompleted;

    /// <summary>Notifications queued and not yet written.</summary>
    public int Pending => Volatile.Read(ref _pending);

    /// <summary>Drops cached data in [offset, offset+length) (length 0: to the end) and the attributes; offset -1: attributes only.</summary>
    public bool InvalidateInode(NodeId node, long offset = 0, long length = 0)
    {
        var message = new FuseNotifyInvalInodeOut { Ino = node.Value, Off = offset, Len = length };
        return Enqueue(FuseNotifyCode.InvalInode, in message, default);
    }

    /// <summary>Drops the kernel's dentry <paramref name="name"/> in <paramref name="parent"/>; with <paramref name="expireOnly"/> it only expires it.</summary>
    public bool InvalidateEntry(NodeId parent, ReadOnlySpan<byte> name, bool expireOnly = false)
    {
        var message = new FuseNotifyInvalEntryOut { Parent = parent.Value, NameLen = (uint)name.Length, Flags = expireOnly ? FuseConstants.ExpireOnly : 0 };
        return Enqueue(FuseNotifyCode.InvalEntry, in message, name, nulTerminate: true);
    }

    /// <summary>Tells the kernel that <paramref name="child"/> was removed from <paramref name="parent"/> behind its back.</summary>
    public bool Delete(NodeId parent, NodeId child, ReadOnlySpan<byte> name)
    {
        var message = new FuseNotifyDeleteOut { Parent = parent.Value, Child = child.Value, NameLen = (uint)name.Length };
        return Enqueue(FuseNotifyCode.Delete, in message, name, nulTerminate: true);
    }

    /// <summary>Pushes <paramref name="data"/> into the kernel's page cache of <paramref name="node"/> at <paramref name="offset"/>.</summary>
    public bool Store(NodeId node, long offset, ReadOnlySpan<byte> data)
    {
        var message = new FuseNotifyStoreOut { NodeId = node.Value, Offset = (ulong)offset, Size = (uint)data.Length };
        return Enqueue(FuseNotifyCode.Store, in message, data);
    }

    /// <summary>
    /// Asks the kernel for the cached bytes of <paramref name="node"/>; they come back through
    /// <see cref="IFuseFileSystem.RetrieveReply"/> with the returned id (0 when not sent).
    /// </summary>
    public ulong Retrieve(NodeId node, long offset, uint size)
    {
        ulong unique = (ulong)Interlocked.Increment(ref _nextRetrieveUnique);
        var message = new FuseNotifyRetrieveOut { NotifyUnique = unique, NodeId = node.Value, Offset = (ulong)offset, Size = size };
        return Enqueue(FuseNotifyCode.Retrieve, in message, default) ? unique : 0;
    }

    /// <summary>Waits until every queued notification has been written (tests, orderly shutdown).</summary>
    public bool WaitIdle(TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (Pending > 0)
        {
            if (DateTime.UtcNow > deadline)
            {
                return false;
            }

            Thread.Sleep(1);
        }

        return true;
    }

    public void Dispose()
    {
        if (_queue is null)
        {
            return;
        }

        _queue.CompleteAdding();
        _thread?.Join(TimeSpan.FromSeconds(5));
    }

    private bool Enqueue<T>(FuseNotifyCode code, in T message, ReadOnlySpan<byte> tail, bool nulTerminate = false) where T : unmanaged
    {
        if (_queue is null || _queue.IsAddingCompleted)
        {
            return false;
        }

        int bodySize = Unsafe.SizeOf<T>();
        int length = OutHeaderSize + bodySize + tail.Length + (nulTerminate ? 1 : 0);
        byte[] buffer = ArrayPool<byte>.Shared.Rent(length);
        var span = buffer.AsSpan(0, length);
        var header = new FuseOutHeader { Len = (uint)length, Error = (int)code, Unique = 0 };
        MemoryMarshal.Write(span, in header);
        MemoryMarshal.Write(span.Slice(OutHeaderSize), in message);
        tail.CopyTo(span.Slice(OutHeaderSize + bodySize));
        if (nulTerminate)
        {
            span[^1] = 0;
        }

        Interlocked.Increment(ref _pending);
        try
        {
            _queue.Add((buffer, length));
            return true;
        }
        catch (InvalidOperationException)
        {
            Interlocked.Decrement(ref _pending);
            ArrayPool<byte>.Shared.Return(buffer);
            return false;
        }
    }

    private unsafe void Run()
    {
        foreach (var (buffer, length) in _queue!.GetConsumingEnumerable())
        {
            fixed (byte* p = buffer)
            {
                nint written = Libc.Write(_fd, p, (nuint)length);
                if (written < 0)
                {
                    int errno = Libc.LastErrno;
                    // ENOENT: the kernel has no such inode or entry cached, which is not an error.
                    if (errno != Errno.ENOENT && errno != Errno.ENODEV)
                    {
                        var code = (FuseNotifyCode)MemoryMarshal.Read<FuseOutHeader>(buffer).Error;
                        _log.Log(FuseLogLevel.Warning, $"notify {code} failed: {Libc.StrError(errno)}");
                    }
                }
            }

            ArrayPool<byte>.Shared.Return(buffer);
            Interlocked.Decrement(ref _pending);
        }
    }
}
