// A mounted FUSE session: the workers that read requests from /dev/fuse and answer them.
//
// Each worker owns a descriptor cloned from the mount's with FUSE_DEV_IOC_CLONE (so the kernel
// can hand requests to whichever worker is idle without one shared file position), a pinned
// request buffer of max_write + 4 KiB and a pinned reply buffer, allocated once: the steady
// state allocates nothing per request. A worker blocks in read(2), hands the bytes to the
// dispatcher, and sends the reply with one writev(2). It holds no lock while it talks to the
// kernel. The session ends when read(2) answers ENODEV: the filesystem was unmounted (by us,
// by umount, or by fusermount3 -u) or the connection was aborted.
using System.Runtime.InteropServices;
using DedupFs.Fuse.Api;
using DedupFs.Fuse.Interop;
using DedupFs.Fuse.Mounting;
using DedupFs.Fuse.Protocol;

namespace DedupFs.Fuse.Session;

public sealed class FuseSession : IDisposable
{
    private readonly IFuseFileSystem _fs;
    private readonly FuseMountHandle _mount;
    private readonly FuseSessionOptions _options;
    private readonly IFuseLogger _log;
    private readonly FuseNotifier _notifier;
    private readonly List<Thread> _workers = [];
    private readonly List<int> _clonedFds = [];
    private readonly ManualResetEventSlim _initialized = new();
    private readonly TaskCompletionSource _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _running;
    private int _disposed;

    private FuseSession(IFuseFileSystem fs, FuseMountHandle mount, FuseSessionOptions options)
    {
        _fs = fs;
        _mount = mount;
        _options = options;
        _log = options.Logger;
        Dispatcher = new FuseDispatcher(fs, options);
        Dispatcher.Initialized += _initialized.Set;
        _notifier = new FuseNotifier(mount.Fd, _log);
        Dispatcher.Notifier = _notifier;
        Dispatcher.Connection.BackingFiles = new FuseBackingFiles(mount.Fd);
    }

    public FuseDispatcher Dispatcher { get; }

    public string MountPoint => _mount.MountPoint;

    public FuseNotifier Notifier => _notifier;

    /// <summary>Completes when every worker has stopped: the filesystem is unmounted.</summary>
    public Task Completion => _completion.Task;

    /// <summary>Mounts <paramref name="fs"/> and starts serving it.</summary>
    public static FuseSession Mount(IFuseFileSystem fs, FuseMountOptions mountOptions, FuseSessionOptions? options = null)
    {
        var handle = FuseMounter.Mount(mountOptions);
        FuseSession? session = null;
        try
        {
            session = new FuseSession(fs, handle, options ?? new FuseSessionOptions());
            session.Start();
            return session;
        }
        catch
        {
            try
            {
                handle.Unmount(lazy: true);
            }
            catch (FuseMountException)
            {
            }

            if (session is null)
            {
                Libc.Close(handle.Fd);
            }

            throw;
        }
    }

    /// <summary>Waits until every worker has stopped (the filesystem was unmounted); false on timeout.</summary>
    public bool WaitForExit(TimeSpan timeout) => ((IAsyncResult)_completion.Task).AsyncWaitHandle.WaitOne(timeout);

    /// <summary>Waits until the kernel's INIT was answered: the mount is usable.</summary>
    public bool WaitForInit(TimeSpan timeout) => _initialized.Wait(timeout);

    /// <summary>Unmounts; the workers then stop on ENODEV. Throws when busy unless <paramref name="lazy"/>.</summary>
    public bool Unmount(bool lazy = false) => _mount.Unmount(lazy);

    private void Start()
    {
        int workers = Math.Max(1, _options.Workers);
        _running = workers;
        for (int i = 0; i < workers; i++)
        {
            int fd = i == 0 || !_options.CloneDescriptors ? _mount.Fd : CloneFd();
            var context = Dispatcher.CreateContext();
            context.AllowScatter = true;
            var worker = new Worker(this, fd, context, _options.BufferSize);
            var thread = new Thread(worker.Run, 256 * 1024) { IsBackground = true, Name = $"fuse-worker-{i}" };
            _workers.Add(thread);
            thread.Start();
        }
    }

    /// <summary>A new /dev/fuse descriptor attached to this connection, or the shared one if cloning is unsupported.</summary>
    private unsafe int CloneFd()
    {
        int fd = Libc.Open("/dev/fuse", 2 | 0x80000);
        if (fd < 0)
        {
            return _mount.Fd;
        }

        uint master = (uint)_mount.Fd;
        if (Libc.Ioctl(fd, FuseConstants.DevIocClone, &master) != 0)
        {
            _log.Log(FuseLogLevel.Warning, $"FUSE_DEV_IOC_CLONE failed ({Libc.StrError(Libc.LastErrno)}); workers share one descriptor");
            Libc.Close(fd);
            return _mount.Fd;
        }

        lock (_clonedFds)
        {
            _clonedFds.Add(fd);
        }

        return fd;
    }

    private void WorkerExited()
    {
        if (Interlocked.Decrement(ref _running) == 0)
        {
            if (!Dispatcher.IsDestroyed)
            {
                try
                {
                    _fs.Destroy();
                }
                catch (Exception e)
                {
                    _log.Log(FuseLogLevel.Error, $"filesystem Destroy failed: {e}");
                }
            }

            _completion.TrySetResult();
        }
    }

    /// <summary>
    /// Unmounts if still mounted (lazily when busy), waits for the workers, and releases the
    /// descriptors. If the workers cannot finish (a lazily detached mount with open files),
    /// the connection is aborted so nothing is left behind.
    /// </summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        if (!Completion.IsCompleted)
        {
            try
            {
                if (!_mount.Unmount(lazy: false) && !WaitForExit(TimeSpan.FromSeconds(1)))
                {
                    AbortConnection();
                }
            }
            catch (FuseMountException)
            {
                try
                {
                    _mount.Unmount(lazy: true);
                }
                catch (FuseMountException e)
                {
                    _log.Log(FuseLogLevel.Error, e.Message);
                }
            }

            if (!WaitForExit(TimeSpan.FromSeconds(10)))
            {
                AbortConnection();
                WaitForExit(TimeSpan.FromSeconds(10));
            }
        }

        _notifier.Dispose();
        lock (_clonedFds)
        {
            foreach (int fd in _clonedFds)
            {
                Libc.Close(fd);
            }

            _clonedFds.Clear();
        }

        Libc.Close(_mount.Fd);
        _initialized.Dispose();
    }

    private void AbortConnection()
    {
        if (_mount.Connection is { } connection && FuseMounter.Abort(connection))
        {
            _log.Log(FuseLogLevel.Warning, $"aborted FUSE connection {connection} of {MountPoint}");
        }
    }

    /// <summary>One reader of /dev/fuse with its own descriptor and buffers.</summary>
    private sealed unsafe class Worker(FuseSession session, int fd, FuseRequestContext ctx, int bufferSize)
    {
        private readonly byte[] _request = GC.AllocateUninitializedArray<byte>(bufferSize, pinned: true);
        private readonly byte[] _reply = GC.AllocateUninitializedArray<byte>(bufferSize + ReplyWriter.HeaderSize, pinned: true);

        public void Run()
        {
            try
            {
                Loop();
            }
            catch (Exception e)
            {
                session._log.Log(FuseLogLevel.Error, $"worker stopped by an unexpected error: {e}");
            }
            finally
            {
                session.WorkerExited();
            }
        }

        private void Loop()
        {
            var dispatcher = session.Dispatcher;
            fixed (byte* request = _request, reply = _reply)
            {
                var iov = new Libc.IoVec { Base = reply };
                while (true)
                {
                    nint read = Libc.Read(fd, request, (nuint)_request.Length);
                    if (read < 0)
                    {
                        int errno = Libc.LastErrno;
                        switch (errno)
                        {
                            case Errno.EINTR or Errno.EAGAIN:
                                continue;
                            case Errno.ENOENT: // the request was interrupted before we got it
                                continue;
                            case Errno.ENODEV: // unmounted or aborted: the normal end
                                return;
                            default:
                                session._log.Log(FuseLogLevel.Error, $"reading /dev/fuse failed: {Libc.StrError(errno)}; worker stops");
                                return;
                        }
                    }

                    if (read == 0)
                    {
                        return;
                    }

                    var requestSpan = new ReadOnlySpan<byte>(request, (int)read);
                    int length = dispatcher.Handle(requestSpan, new Span<byte>(reply, _reply.Length), ctx);
                    if (length == 0)
                    {
                        continue;
                    }

                    nint sent;
                    if (ctx.SegmentCount > 0)
                    {
                        ctx.Segments[0].Base = reply; // the header, then data and zero runs
                        sent = Libc.Writev(fd, ctx.Segments, ctx.SegmentCount);
                    }
                    else
                    {
                        iov.Length = (nuint)length;
                        sent = Libc.Writev(fd, &iov, 1);
                    }

                    if (sent < 0)
                    {
                        int errno = Libc.LastErrno;
                        if (errno == Errno.ENOENT)
                        {
                            dispatcher.Statistics.CountUndelivered();
                            // The caller went away (interrupted): the kernel dropped the request.
                            var opcode = (FuseOpcode)MemoryMarshal.Read<FuseInHeader>(requestSpan).Opcode;
                            dispatcher.ForgetUndelivered(opcode, new ReadOnlySpan<byte>(reply, length));
                        }
                        else if (errno == Errno.ENODEV)
                        {
                            return;
                        }
                        else
                        {
                            session._log.Log(FuseLogLevel.Error, $"writing a reply of {length} bytes failed: {Libc.StrError(errno)}");
                        }
                    }
                }
            }
        }
    }
}
