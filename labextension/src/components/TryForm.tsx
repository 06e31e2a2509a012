/**
 * "Try it": a form generated from a tool's input schema that calls the tool
 * through `POST dodo/api/mcp/tools/call` and shows what it returned.
 */
import * as React from 'react';

import type { DodoModel } from '../model';
import { toAPIError } from '../model';
import { type FormValues, type IField, buildArguments, fieldsOf, initialValues } from '../schemaForm';
import type { ITool, IToolResult } from '../tokens';
import { Field, domId } from './common';
import { ToolResult } from './ToolResult';

/**
 * Props of `TryForm`.
 */
export interface ITryFormProps {
  model: DodoModel;
  tool: ITool;
}

export function TryForm({ model, tool }: ITryFormProps): React.ReactElement {
  const fields = React.useMemo(() => fieldsOf(tool.input_schema), [tool.input_schema]);
  const [values, setValues] = React.useState<FormValues>(() => initialValues(fields));
  const [errors, setErrors] = React.useState<Record<string, string>>({});
  const [busy, setBusy] = React.useState(false);
  const [result, setResult] = React.useState<IToolResult | null>(null);
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
      setResult(await model.callTool(tool.name, built.args));
    } catch (reason) {
      setFailure(toAPIError(reason).message);
    } finally {
      setBusy(false);
    }
  };

  return (
    <div className="jp-dodo-Try">
      <details className="jp-dodo-Try-schema">
        <summary>Input schema</summary>
        <pre>{JSON.stringify(tool.input_schema ?? {}, null, 2)}</pre>
      </details>
      <form
        className="jp-dodo-Form"
        onSubmit={e => void submit(e)}
        aria-label={`Try ${tool.original_name}`}
        noValidate
      >
        {fields.length === 0 && <div className="jp-dodo-Message">This tool takes no input.</div>}
        {fields.map(field => (
          <Field
            key={field.name}
            id={domId('try', tool.name, field.name)}
            label={field.label}
            hint={hintOf(field)}
            error={errors[field.name]}
            required={field.required}
          >
            {props => (
              <FieldInput
                field={field}
                inputProps={props}
                value={values[field.name] ?? ''}
                onChange={value => setValues({ ...values, [field.name]: value })}
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
      {failure && (
        <div className="jp-dodo-Result jp-dodo-Result-error" role="alert">
          <strong>The call failed.</strong> {failure}
        </div>
      )}
      {result && <ToolResult result={result} />}
    </div>
  );
}

function hintOf(field: IField): string | undefined {
  const kind =
    field.kind === 'json'
      ? `JSON${field.jsonType ? ' ' + field.jsonType : ''}`
      : field.kind === 'enum'
        ? undefined
        : field.kind;
  const parts = [field.description, kind && `(${kind})`].filter(Boolean);
  return parts.length ? parts.join(' ') : undefined;
}

function FieldInput({
  field,
  inputProps,
  value,
  onChange
}: {
  field: IField;
  inputProps: Record<string, unknown>;
  value: string;
  onChange: (value: string) => void;
}): React.ReactElement {
  switch (field.kind) {
    case 'enum':
      return (
        <select
          {...inputProps}
          className="jp-mod-styled jp-dodo-Input"
          value={value}
          onChange={e => onChange(e.target.value)}
        >
          {!field.required && <option value="">(not set)</option>}
          {field.options.map((option, index) => (
            <option key={index} value={String(index)}>
              {typeof option === 'string' ? option : JSON.stringify(option)}
            </option>
          ))}
        </select>
      );
    case 'boolean':
      return (
        <select
          {...inputProps}
          className="jp-mod-styled jp-dodo-Input"
          value={value}
          onChange={e => onChange(e.target.value)}
        >
          {!field.required && <option value="">(not set)</option>}
          <option value="true">true</option>
          <option value="false">false</option>
        </select>
      );
    case 'json':
      return (
        <textarea
          {...inputProps}
          className="jp-mod-styled jp-dodo-Input jp-dodo-Code"
          rows={3}
          spellCheck={false}
          placeholder={field.jsonType === 'array' ? '[]' : field.jsonType === 'object' ? '{}' : ''}
          value={value}
          onChange={e => onChange(e.target.value)}
        />
      );
    case 'number':
    case 'integer':
      return (
        <input
          {...inputProps}
          className="jp-mod-styled jp-dodo-Input"
          type="text"
          inputMode={field.kind === 'integer' ? 'numeric' : 'decimal'}
          value={value}
          onChange={e => onChange(e.target.value)}
        />
      );
    default:
      return (
        <input
          {...inputProps}
          className="jp-mod-styled jp-dodo-Input"
          type="text"
          value={value}
          onChange={e => onChange(e.target.value)}
        />
      );
  }
}
