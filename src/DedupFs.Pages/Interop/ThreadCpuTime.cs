// clock_gettime(CLOCK_THREAD_CPUTIME_ID): CPU time of the calling thread, for the scan-time
// advisor's "how much CPU did this full scan cost" (the kernel reads ksmd's sched runtime).
// Wall time would count the time a SCHED_IDLE thread spends waiting for a free core.
using System.Runtime.InteropServices;

namespace DedupFs.Pages.Interop;

internal static unsafe partial class ThreadCpuTime
{
    private const int CLOCK_THREAD_CPUTIME_ID = 3;

    [StructLayout(LayoutKind.Sequential)]
    private struct Timespec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    [LibraryImport("libc")]
    private static partial int clock_gettime(int clock, Timespec* ts);

    /// <summary>CPU nanoseconds of the calling thread, or -1 if the clock cannot be read.</summary>
    public static long NowNanoseconds()
    {
        if (!OperatingSystem.IsLinux()) return -1;
        Timespec ts;
        try
        {
            return clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) == 0 ? ts.Seconds * 1_000_000_000 + ts.Nanoseconds : -1;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return -1;
        }
    }
}
