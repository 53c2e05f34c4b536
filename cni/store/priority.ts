// A process holding a store's write lock makes every other writer of the network wait. In a burst
// of ADDs (a node starting 200 pods) it shares two cores with a hundred processes that are still
// starting, and whenever it waits for a CPU the whole queue waits with it: a priority inversion.
// Measured with bench/burst-trace.ts on 200 concurrent ADDs: the lock was held 40-65 ms per ADD
// for about 4 ms of work, 8-13 s in all, and the median wait for it was 150-300 ms. So a process
// raises its scheduling priority from the moment it asks for the lock until its transaction ends,
// then drops back: the holder runs when it is runnable, and a waiter whose retry is due gets the
// CPU for it. Raising needs CAP_SYS_NICE (runtimes run CNI plugins as root); without it nothing
// changes. Nothing else depends on it: it changes when the work runs, never what it does.
const os = () => process.getBuiltinModule("node:os") as typeof import("node:os");

/** nice -10: ahead of the processes starting at 0 (about 9 times their CFS weight), below the kernel's urgent threads. */
const RAISED = -10;

/** Raises this thread's priority; returns how to restore it. */
export function raisePriority(): () => void {
  let before: number;
  try {
    before = os().getPriority();
    if (before <= RAISED) return () => {};
    os().setPriority(RAISED);
  } catch {
    return () => {}; // not permitted: run as we are
  }
  let raised = true;
  return () => {
    if (!raised) return;
    raised = false;
    try {
      os().setPriority(before);
    } catch {
      // a lower priority can always be set again; nothing to do if not
    }
  };
}
