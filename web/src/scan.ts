// Reading ticket QR codes with the camera: the browser's BarcodeDetector
// where it has one, else jsQR over the video's frames. The same code held
// in front of the camera is reported once, not on every frame.
interface Detector {
  detect(source: CanvasImageSource): Promise<{ rawValue: string }[]>;
}

export interface Scanner {
  video: HTMLVideoElement;
  stop(): void;
}

/** Starts the back camera; `onCode` gets each new code. Rejects when there
 *  is no camera or the person refuses it. */
export async function startScanner(onCode: (code: string) => void, signal: AbortSignal): Promise<Scanner> {
  const stream = await navigator.mediaDevices.getUserMedia({
    video: { facingMode: { ideal: "environment" }, width: { ideal: 640 }, height: { ideal: 480 } },
    audio: false,
  });
  const video = document.createElement("video");
  video.muted = true;
  video.playsInline = true;
  video.srcObject = stream;
  await video.play();
  const canvas = document.createElement("canvas");
  const ctx = canvas.getContext("2d", { willReadFrequently: true }) as CanvasRenderingContext2D;
  const Native = (globalThis as { BarcodeDetector?: new (o: { formats: string[] }) => Detector }).BarcodeDetector;
  const native = Native ? new Native({ formats: ["qr_code"] }) : null;
  // The decoder is loaded only when a door opens the camera (it is most of
  // the app's weight otherwise).
  const jsQR = native ? null : (await import("jsqr")).default;
  let fallback: typeof jsQR = null;
  let last = "";
  let lastAt = 0;
  let stopped = false;
  const stop = () => {
    stopped = true;
    stream.getTracks().forEach((t) => t.stop());
    video.srcObject = null;
  };
  signal.addEventListener("abort", stop, { once: true });

  const read = async (): Promise<string | null> => {
    if (!video.videoWidth) return null;
    if (native) {
      try {
        return (await native.detect(video))[0]?.rawValue ?? null;
      } catch {
        // Some platforms list the API but cannot run it: fall back.
        fallback ??= (await import("jsqr")).default;
      }
    }
    const decode = jsQR ?? fallback;
    if (!decode) return null;
    canvas.width = video.videoWidth;
    canvas.height = video.videoHeight;
    ctx.drawImage(video, 0, 0);
    const frame = ctx.getImageData(0, 0, canvas.width, canvas.height);
    return decode(frame.data, frame.width, frame.height, { inversionAttempts: "dontInvert" })?.data ?? null;
  };
  const loop = async () => {
    while (!stopped) {
      const code = await read();
      const now = Date.now();
      if (code && (code !== last || now - lastAt > 5000)) {
        last = code;
        lastAt = now;
        onCode(code);
      } else if (code) {
        lastAt = now;
      }
      await new Promise((r) => setTimeout(r, 150));
    }
  };
  void loop();
  return { video, stop };
}
