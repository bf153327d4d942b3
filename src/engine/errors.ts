// The root of every error the engine and the builder throw on purpose. Subclasses name the
// problem; their messages say what is wrong and what to do about it.

export class FreqKvError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}
