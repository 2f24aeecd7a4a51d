// Mounts one of the test filesystems in the foreground: the transport benchmark's null
// filesystem, or the in-memory filesystem the crash tests kill. Exits when unmounted, or
// unmounts and exits on SIGTERM/SIGINT.
//   DedupFs.Fuse.TestHost null|memory MOUNTPOINT [--workers N] [--fusermount] [--no-clone]
using System.Runtime.InteropServices;
using DedupFs.Fuse.Api;
using DedupFs.Fuse.Mounting;
using DedupFs.Fuse.Session;
using DedupFs.Fuse.TestHost;

// Positional words are the kind and the mount point; options may stand anywhere.
var positional = new List<string>();
for (int i = 0; i < args.Length; i++)
{
    if (args[i] == "--workers")
    {
        i++;
    }
    else if (!args[i].StartsWith("--", StringComparison.Ordinal))
    {
        positional.Add(args[i]);
    }
}

if (positional.Count != 2 || positional[0] is not ("null" or "memory"))
{
    Console.Error.WriteLine("usage: DedupFs.Fuse.TestHost null|memory MOUNTPOINT [--workers N] [--fusermount] [--no-clone]");
    return 2;
}

int workers = new FuseSessionOptions().Workers;
int at = Array.IndexOf(args, "--workers");
if (at >= 0 && (at + 1 >= args.Length || !int.TryParse(args[at + 1], out workers) || workers < 1))
{
    Console.Error.WriteLine("--workers takes a positive number");
    return 2;
}

IFuseFileSystem fs = positional[0] == "null" ? new NullFileSystem() : new MemoryFileSystem();
if (fs is MemoryFileSystem memory)
{
    memory.AddSlowFile("slow");
}

var mountOptions = new FuseMountOptions
{
    MountPoint = positional[1],
    FsName = "testhost-" + positional[0],
    Subtype = "testhost",
    Method = args.Contains("--fusermount") ? MountMethod.Fusermount : MountMethod.Auto,
};
var sessionOptions = new FuseSessionOptions { Workers = workers, CloneDescriptors = !args.Contains("--no-clone") };

FuseSession session;
try
{
    session = FuseSession.Mount(fs, mountOptions, sessionOptions);
}
catch (FuseMountException e)
{
    Console.Error.WriteLine($"testhost: {e.Message}");
    return 1;
}

void Stop(PosixSignalContext context)
{
    context.Cancel = true;
    try
    {
        if (!session.Unmount())
        {
            return;
        }
    }
    catch (FuseMountException)
    {
        session.Unmount(lazy: true);
    }
}

using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Stop);
using var interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, Stop);
if (!session.WaitForInit(TimeSpan.FromSeconds(30)))
{
    Console.Error.WriteLine("testhost: the kernel never sent INIT");
    session.Dispose();
    return 1;
}

Console.WriteLine($"mounted {session.MountPoint}");
session.Completion.Wait();
session.Dispose();
return 0;
