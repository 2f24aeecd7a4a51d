// Mounting and unmounting a FUSE filesystem, the two ways libfuse does it.
//
// As root we open /dev/fuse ourselves and call mount(2) with "fd=N,rootmode=...,user_id=...,
// group_id=..." in the data string: the kernel ties the new superblock to that descriptor.
// Without root, fusermount3 (setuid) does the mount for us: we give it one end of a Unix
// socket pair in the _FUSE_COMMFD environment variable, and it sends the opened /dev/fuse
// descriptor back over the socket as SCM_RIGHTS ancillary data.
//
// Unmounting is umount2(2) (MNT_DETACH for a lazy unmount that succeeds while files are open
// or the daemon is gone) or `fusermount3 -u [-z]`. A mount whose daemon died answers every
// access with ENOTCONN ("Transport endpoint is not connected"); the lazy unmount removes it.
using System.Diagnostics;
using System.Runtime.InteropServices;
using DedupFs.Fuse.Interop;
using Tmds.Linux;

namespace DedupFs.Fuse.Mounting;

public static class FuseMounter
{
    private const int ORdWr = 2;
    private const int OCloExec = 0x80000;
    private const ulong MsRdOnly = 1, MsNoSuid = 2, MsNoDev = 4, MsNoExec = 8, MsNoAtime = 1024;
    private const int MntDetach = 2;

    public static bool IsRoot => Libc.GetUid() == 0;

    /// <summary>Mounts and returns the /dev/fuse descriptor the kernel will send requests on.</summary>
    public static FuseMountHandle Mount(FuseMountOptions options)
    {
        options.Validate();
        string mountPoint = Path.GetFullPath(options.MountPoint);
        if (!Directory.Exists(mountPoint) && !File.Exists(mountPoint))
        {
            throw new FuseMountException($"mount point {mountPoint} does not exist");
        }

        var method = options.Method == MountMethod.Auto ? (IsRoot ? MountMethod.Syscall : MountMethod.Fusermount) : options.Method;
        int fd = method == MountMethod.Syscall ? MountSyscall(options, mountPoint) : MountFusermount(options, mountPoint);
        return new FuseMountHandle(fd, mountPoint, method, options.FusermountPath);
    }

    /// <summary>
    /// Unmounts <paramref name="mountPoint"/>. A lazy unmount detaches it even when busy or
    /// when its daemon is dead. Returns false when nothing was mounted there.
    /// </summary>
    public static bool Unmount(string mountPoint, bool lazy = false, MountMethod method = MountMethod.Auto, string fusermountPath = "fusermount3")
    {
        string full = Path.GetFullPath(mountPoint);
        if (!MountTable.IsFuseMount(full))
        {
            return false;
        }

        if (method == MountMethod.Auto)
        {
            method = IsRoot ? MountMethod.Syscall : MountMethod.Fusermount;
        }

        if (method == MountMethod.Syscall)
        {
            if (Umount2(full, lazy ? MntDetach : 0) != 0)
            {
                int errno = Libc.LastErrno;
                throw new FuseMountException($"cannot unmount {full}: {Libc.StrError(errno)}{(errno == 16 ? " (files are open there; a lazy unmount detaches it anyway)" : "")}");
            }

            return true;
        }

        var args = new List<string> { "-u", "-q" };
        if (lazy)
        {
            args.Add("-z");
        }

        args.Add("--");
        args.Add(full);
        var (exit, stderr) = Run(fusermountPath, args, environment: null);
        if (exit != 0)
        {
            throw new FuseMountException($"cannot unmount {full}: {fusermountPath} said: {stderr.Trim()}");
        }

        return true;
    }

    /// <summary>
    /// Aborts the kernel side of a FUSE connection (/sys/fs/fuse/connections/N/abort): every
    /// waiting request fails with ENOTCONN and the daemon's reads return ENODEV. The last resort
    /// when a lazily detached mount still has open files.
    /// </summary>
    public static bool Abort(uint connection)
    {
        string path = $"/sys/fs/fuse/connections/{connection}/abort";
        try
        {
            File.WriteAllText(path, "1");
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    private static unsafe int MountSyscall(FuseMountOptions options, string mountPoint)
    {
        int fd = Libc.Open("/dev/fuse", ORdWr | OCloExec);
        if (fd < 0)
        {
            int errno = Libc.LastErrno;
            throw new FuseMountException(errno == 2
                ? "/dev/fuse does not exist: load the fuse module (modprobe fuse) or install fuse3"
                : $"cannot open /dev/fuse: {Libc.StrError(errno)}");
        }

        uint rootMode = File.Exists(mountPoint) && !Directory.Exists(mountPoint) ? 0x8000u : 0x4000u;
        var data = $"fd={fd},rootmode={Convert.ToString(rootMode, 8)},user_id={Libc.GetUid()},group_id={Libc.GetGid()}";
        if (options.AllowOther) data += ",allow_other";
        if (options.DefaultPermissions) data += ",default_permissions";
        if (options.MaxRead is { } maxRead) data += $",max_read={maxRead}";

        ulong flags = (options.Suid ? 0 : MsNoSuid) | (options.Dev ? 0 : MsNoDev) | (options.ReadOnly ? MsRdOnly : 0)
            | (options.NoExec ? MsNoExec : 0) | (options.NoAtime ? MsNoAtime : 0);
        string type = options.Subtype is null ? "fuse" : "fuse." + options.Subtype;

        int result = MountCall(options.FsName, mountPoint, type, flags, data);
        if (result != 0)
        {
            int errno = Libc.LastErrno;
            Libc.Close(fd);
            throw new FuseMountException($"cannot mount {mountPoint}: {Libc.StrError(errno)}" + errno switch
            {
                1 => " (mount(2) needs root; run as root or install fuse3 for fusermount3)",
                16 => " (something is already mounted there)",
                19 => " (the kernel has no FUSE support: modprobe fuse)",
                _ => "",
            });
        }

        return fd;
    }

    private static unsafe int MountCall(string source, string target, string type, ulong flags, string data)
    {
        var s = NullTerminated(source);
        var t = NullTerminated(target);
        var ty = NullTerminated(type);
        var d = NullTerminated(data);
        fixed (byte* ps = s, pt = t, pty = ty, pd = d)
        {
            int rc = LibC.mount(ps, pt, pty, (ulong_t)flags, pd);
            Marshal.SetLastPInvokeError(LibC.errno);
            return rc;
        }
    }

    private static unsafe int Umount2(string target, int flags)
    {
        var t = NullTerminated(target);
        fixed (byte* pt = t)
        {
            int rc = LibC.umount2(pt, flags);
            Marshal.SetLastPInvokeError(LibC.errno);
            return rc;
        }
    }

    private static unsafe int MountFusermount(FuseMountOptions options, string mountPoint)
    {
        const int AfUnix = 1, SockStream = 1;
        int* sv = stackalloc int[2];
        if (LibC.socketpair(AfUnix, SockStream, 0, sv) != 0)
        {
            throw new FuseMountException($"socketpair failed: {Libc.StrError(LibC.errno)}");
        }

        int ours = sv[1], theirs = sv[0];
        LibC.fcntl(ours, 2 /* F_SETFD */, 1 /* FD_CLOEXEC */);
        try
        {
            var env = new Dictionary<string, string> { ["_FUSE_COMMFD"] = theirs.ToString() };
            var (exit, stderr) = Run(options.FusermountPath, ["-o", options.FusermountOptions(), "--", mountPoint], env);
            Libc.Close(theirs);
            theirs = -1;
            if (exit != 0)
            {
                throw new FuseMountException($"cannot mount {mountPoint}: {options.FusermountPath} said: {stderr.Trim()}");
            }

            return ReceiveFd(ours);
        }
        finally
        {
            if (theirs >= 0)
            {
                Libc.Close(theirs);
            }

            Libc.Close(ours);
        }
    }

    /// <summary>Receives one descriptor sent with SCM_RIGHTS.</summary>
    private static unsafe int ReceiveFd(int socket)
    {
        byte data = 0;
        var iov = new Libc.IoVec { Base = &data, Length = 1 };
        const int ControlSize = 64;
        byte* control = stackalloc byte[ControlSize];
        new Span<byte>(control, ControlSize).Clear();
        var message = new Libc.MsgHdr { Iov = &iov, IovLen = 1, Control = control, ControlLen = ControlSize };
        nint received;
        do
        {
            received = Libc.RecvMsg(socket, &message, 0);
        }
        while (received < 0 && Libc.LastErrno == 4);

        if (received <= 0)
        {
            throw new FuseMountException("fusermount3 exited without sending the /dev/fuse descriptor");
        }

        var header = (Libc.CmsgHdr*)control;
        if (message.ControlLen < (nuint)sizeof(Libc.CmsgHdr) || header->Level != Libc.SolSocket || header->Type != Libc.ScmRights)
        {
            throw new FuseMountException("fusermount3 sent no descriptor (no SCM_RIGHTS message)");
        }

        int fd = *(int*)(control + sizeof(Libc.CmsgHdr));
        LibC.fcntl(fd, 2, 1);
        return fd;
    }

    private static (int Exit, string Stderr) Run(string program, IEnumerable<string> arguments, Dictionary<string, string>? environment)
    {
        var info = new ProcessStartInfo(program)
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
            UseShellExecute = false,
        };
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        if (environment is not null)
        {
            foreach (var (key, value) in environment)
            {
                info.Environment[key] = value;
            }
        }

        try
        {
            using var process = Process.Start(info) ?? throw new FuseMountException($"cannot start {program}");
            string stderr = process.StandardError.ReadToEnd();
            process.StandardOutput.ReadToEnd();
            process.WaitForExit();
            return (process.ExitCode, stderr);
        }
        catch (System.ComponentModel.Win32Exception)
        {
            throw new FuseMountException($"{program} not found: install fuse3 (apt-get install fuse3)");
        }
    }

    private static byte[] NullTerminated(string value)
    {
        var bytes = new byte[System.Text.Encoding.UTF8.GetByteCount(value) + 1];
        System.Text.Encoding.UTF8.GetBytes(value, bytes);
        return bytes;
    }
}

/// <summary>An established mount: the descriptor requests arrive on, and how to undo it.</summary>
public sealed class FuseMountHandle(int fd, string mountPoint, MountMethod method, string fusermountPath)
{
    public int Fd { get; } = fd;
    public string MountPoint { get; } = mountPoint;
    public MountMethod Method { get; } = method;

    /// <summary>The connection number (/sys/fs/fuse/connections/N), read from the mount table.</summary>
    public uint? Connection { get; } = MountTable.FindFuse(mountPoint)?.Minor;

    public bool Unmount(bool lazy = false) => FuseMounter.Unmount(MountPoint, lazy, Method, fusermountPath);
}
