/** A problem the user can fix from the message alone: the local run prints it without a stack trace. */
export class LocalRunError extends Error {
  constructor(message: string) {
    super(message);
    this.name = this.constructor.name;
  }
}
