// Types for fft.js (radix-4 complex FFT of power-of-two sizes; the package ships none).
declare module 'fft.js' {
  type ComplexArray = number[] | Float64Array;
  class FFT {
    constructor(size: number);
    readonly size: number;
    createComplexArray(): number[];
    /** Forward DFT (e^{-2πi jk/n}, unnormalized) of interleaved [re, im] `data` into `out` (distinct arrays). */
    transform(out: ComplexArray, data: ComplexArray): void;
    /** Inverse DFT divided by the size. */
    inverseTransform(out: ComplexArray, data: ComplexArray): void;
  }
  export = FFT;
}
