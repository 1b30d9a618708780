// The name field folds away once a name is set: it then reads as a line of text above the message field
// ("as ann", and a "change name" button), which takes the whole width. Focusing the name, by the button, a
// click or the keyboard, opens it again; leaving it with a name the server would take folds it.

export class NameField {
  // valid() says whether the field holds a name the server would take.
  constructor(valid) {
    this.box = document.querySelector(".composer-handle");
    this.input = document.getElementById("handle");
    this.button = document.getElementById("change-name");
    this.valid = valid;
    this.button.hidden = this.input.readOnly; // a signed-in name is the token's: nothing to change
    this.button.addEventListener("click", () => {
      this.input.focus();
      this.input.select();
    });
    this.input.addEventListener("focus", () => this.fold(false));
    this.input.addEventListener("blur", () => this.fold(this.valid()));
    this.fold(this.valid() && document.activeElement !== this.input);
  }

  fold(folded) {
    this.box.classList.toggle("folded", folded);
  }
}
