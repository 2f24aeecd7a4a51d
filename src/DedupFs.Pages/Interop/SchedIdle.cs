// sched_setscheduler(2) with SCHED_IDLE for the merge scanner's thread: it then runs only when
// a core would otherwise idle, like ksmd at nice 5 but stricter, so merging never takes CPU
// from FUSE request threads. pid 0 means the calling thread (a Linux thread is a task with its
// own tid), so the call must run on the scanner thread itself. Best effort: on failure the
// thread keeps ThreadPriority.Lowest.
using System.Runtime.InteropServices;

namespace DedupFs.Pages.Interop;

internal static unsafe partial class SchedIdle
{
    private const int SCHED_IDLE = 5;

    [LibraryImport("libc", SetLastError = true)]
    private static partial int sched_setscheduler(int pid, int policy, int* param);

    /// <summary>Puts the calling thread in SCHED_IDLE; returns whether it worked.</summary>
    public static bool TryApplyToCurrentThread()
    {
        if (!OperatingSystem.IsLinux()) return false;
        try
        {
            int priority = 0;  // struct sched_param { int sched_priority; }, 0 for SCHED_IDLE
            return sched_setscheduler(0, SCHED_IDLE, &priority) == 0;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return false;
        }
    }
}
