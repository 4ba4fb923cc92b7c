/** React binding of JobStream: live progress of one job, reconnecting and resuming by sequence number. */
import { useEffect, useRef, useState } from "react";
import { initialProgress, JobStream, type JobStreamOptions, type ProgressState, type SocketTarget } from "./jobStream";

export interface UseJobProgressOptions {
  url: (jobId: string, after: number) => string | SocketTarget | Promise<string | SocketTarget>;
  WebSocketImpl?: JobStreamOptions["WebSocketImpl"];
  retryDelaysMs?: readonly number[];
  maxRetries?: number;
  /** Called once when the terminal status event arrives (e.g. to fetch the stored result). */
  onTerminal?: (state: ProgressState) => void;
}

export function useJobProgress(jobId: string | null, options: UseJobProgressOptions): ProgressState {
  const [state, setState] = useState<ProgressState>(initialProgress);
  // The latest options without restarting the stream when a caller passes new closures each render.
  const optionsRef = useRef(options);
  optionsRef.current = options;

  useEffect(() => {
    setState(initialProgress);
    if (!jobId) return undefined;
    let announced = false;
    const { WebSocketImpl, retryDelaysMs, maxRetries } = optionsRef.current;
    const stream = new JobStream({
      url: (after) => optionsRef.current.url(jobId, after),
      WebSocketImpl,
      retryDelaysMs,
      maxRetries,
      onChange: (next) => {
        setState(next);
        if (next.terminal && !announced) {
          announced = true;
          optionsRef.current.onTerminal?.(next);
        }
      },
    });
    stream.start();
    return () => stream.stop();
  }, [jobId]);

  return state;
}
