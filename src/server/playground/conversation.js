// The conversation: a list of user and assistant messages the user can edit, re-role and delete, and
// the one assistant message being streamed into. Each message is an <li> cloned from
// #message-template; its reasoning (if the model produced any) sits in a folded <details> above the
// answer and is shown only, never sent back.

/** @typedef {{ role: 'user' | 'assistant', content: string, reasoning: string, stats: string }} Message */

export class Conversation {
  /** @type {{ message: Message, item: HTMLLIElement }[]} */
  #entries = [];
  #list;
  #template;
  #onChange;

  /**
   * @param {HTMLOListElement} list
   * @param {HTMLTemplateElement} template
   * @param {() => void} onChange runs after every edit (the page saves the conversation then)
   */
  constructor(list, template, onChange) {
    this.#list = list;
    this.#template = template;
    this.#onChange = onChange;
  }

  /** @returns {Message[]} */
  get messages() {
    return this.#entries.map((e) => ({ ...e.message }));
  }

  get isEmpty() {
    return this.#entries.length === 0;
  }

  /** Replaces the conversation (a restored one, or none). */
  load(messages) {
    for (const entry of this.#entries) entry.item.remove();
    this.#entries = [];
    for (const m of messages) this.add(m.role, m.content, m.reasoning ?? '', m.stats ?? '');
  }

  /** Appends a message and returns its <li>. */
  add(role, content, reasoning = '', stats = '') {
    const message = { role, content, reasoning, stats };
    const item = /** @type {HTMLLIElement} */ (this.#template.content.firstElementChild.cloneNode(true));
    const entry = { message, item };
    this.#entries.push(entry);
    const roleSelect = item.querySelector('.role');
    const text = item.querySelector('.content');
    const showRole = () => {
      item.dataset.role = message.role;
      text.setAttribute('aria-label', `${message.role} message`);
    };
    roleSelect.value = role;
    text.value = content;
    showRole();
    roleSelect.addEventListener('change', () => {
      message.role = roleSelect.value;
      showRole();
      this.#onChange();
    });
    text.addEventListener('input', () => {
      message.content = text.value;
      autosize(text);
      this.#onChange();
    });
    item.querySelector('.delete').addEventListener('click', () => {
      this.#entries.splice(this.#entries.indexOf(entry), 1);
      item.remove();
      this.#onChange();
    });
    this.#showReasoning(entry);
    item.querySelector('.stats').textContent = stats;
    this.#list.append(item);
    autosize(text);
    this.#onChange();
    return item;
  }

  /**
   * Starts the assistant message a generation streams into. While it streams, its text is read-only and
   * it cannot be deleted; `done` makes it an ordinary editable message (or drops it if still empty).
   */
  startAssistant() {
    const item = this.add('assistant', '');
    const entry = this.#entries.at(-1);
    const text = item.querySelector('.content');
    const locked = [item.querySelector('.role'), item.querySelector('.delete')];
    item.setAttribute('aria-busy', 'true');
    item.classList.add('streaming');
    text.readOnly = true;
    for (const control of locked) control.disabled = true;
    return {
      item,
      append: ({ content, reasoning }) => {
        entry.message.content += content;
        entry.message.reasoning += reasoning;
        if (content) {
          text.value = entry.message.content;
          autosize(text);
        }
        if (reasoning) this.#showReasoning(entry);
      },
      /** @param {string} stats a line shown under the message; @returns {boolean} whether it was kept */
      done: (stats) => {
        item.removeAttribute('aria-busy');
        item.classList.remove('streaming');
        text.readOnly = false;
        for (const control of locked) control.disabled = false;
        if (entry.message.content === '' && entry.message.reasoning === '') {
          this.#entries.splice(this.#entries.indexOf(entry), 1);
          item.remove();
          this.#onChange();
          return false;
        }
        entry.message.stats = stats;
        item.querySelector('.stats').textContent = stats;
        this.#onChange();
        return true;
      },
    };
  }

  #showReasoning({ message, item }) {
    const details = item.querySelector('.reasoning');
    details.hidden = message.reasoning === '';
    details.querySelector('.reasoning-text').textContent = message.reasoning;
  }
}

/** Grows a textarea to fit its text (up to the max-height in the stylesheet, then it scrolls). */
export function autosize(textarea) {
  textarea.style.height = 'auto';
  textarea.style.height = `${textarea.scrollHeight + 2}px`;
}
