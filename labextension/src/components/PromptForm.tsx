/**
 * A form built from a prompt's arguments (each a text) that fills the prompt in
 * through `POST dodo/api/mcp/prompts/get` and shows its messages
 * (`PromptMessages.tsx`).
 */
import * as React from 'react';

import type { DirectoryModel } from '../directoryModel';
import { promptSchema } from '../mcpContent';
import { toAPIError } from '../remote';
import { type FormValues, buildArguments, fieldsOf, initialValues } from '../schemaForm';
import type { IGetPromptResult, IPromptInfo } from '../tokens';
import { Busy, Field, domId } from './common';
import { PromptMessages } from './PromptMessages';

/**
 * Props of `PromptForm`.
 */
export interface IPromptFormProps {
  model: DirectoryModel;
  prompt: IPromptInfo;
  /**
   * The prompt's name as people read it.
   */
  label: string;
}

export function PromptForm({ model, prompt, label }: IPromptFormProps): React.ReactElement {
  const fields = React.useMemo(() => fieldsOf(promptSchema(prompt)), [prompt]);
  const [values, setValues] = React.useState<FormValues>(() => initialValues(fields));
  const [errors, setErrors] = React.useState<Record<string, string>>({});
  const [busy, setBusy] = React.useState(false);
  const [result, setResult] = React.useState<IGetPromptResult | null>(null);
  const [failure, setFailure] = React.useState<string | null>(null);

  const submit = async (event: React.FormEvent): Promise<void> => {
    event.preventDefault();
    const built = buildArguments(fields, values);
    setErrors(built.errors);
    if (Object.keys(built.errors).length > 0) {
      return;
    }
    setBusy(true);
    setFailure(null);
    setResult(null);
    try {
      setResult(await model.getPrompt(prompt.name, built.args as Record<string, string>));
    } catch (reason) {
      const error = toAPIError(reason);
      // The server names the arguments it refused as `arguments.<name>`.
      const fieldErrors: Record<string, string> = {};
      for (const [key, message] of Object.entries(error.fields)) {
        if (key.startsWith('arguments.')) {
          const name = key.slice('arguments.'.length);
          fieldErrors[name] = message === 'required' ? 'Required.' : message;
        }
      }
      setErrors(fieldErrors);
      setFailure(error.message);
    } finally {
      setBusy(false);
    }
  };

  return (
    <div className="jp-dodo-Try">
      <form
        className="jp-dodo-Form"
        onSubmit={e => void submit(e)}
        aria-label={`Use ${label}`}
        noValidate
      >
        {fields.length === 0 && (
          <div className="jp-dodo-Message">This prompt takes no arguments.</div>
        )}
        {fields.map(field => (
          <Field
            key={field.name}
            id={domId('prompt', prompt.name, field.name)}
            label={field.label}
            hint={field.description || undefined}
            error={errors[field.name]}
            required={field.required}
          >
            {props => (
              <textarea
                {...props}
                className="jp-mod-styled jp-dodo-Input"
                rows={1}
                value={values[field.name] ?? ''}
                onChange={e => setValues({ ...values, [field.name]: e.target.value })}
              />
            )}
          </Field>
        ))}
        <div className="jp-dodo-Actions">
          <button type="submit" className="jp-mod-styled jp-mod-accept" disabled={busy}>
            {busy ? 'Running…' : 'Run'}
          </button>
        </div>
      </form>
      {busy && <Busy label="Asking the server for the messages…" />}
      {failure && (
        <div className="jp-dodo-Result jp-dodo-Result-error" role="alert">
          <strong>The prompt failed.</strong> {failure}
        </div>
      )}
      {result && <PromptMessages result={result} label={label} />}
    </div>
  );
}
