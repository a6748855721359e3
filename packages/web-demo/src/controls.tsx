/** Small controls the pages share. */
import { useEffect, useState } from 'preact/hooks';

/**
 * A checkbox that shows the user's click at once, then follows `checked` as the stored state
 * reports it (a change is a commit and, often, a message to other devices: it takes a moment).
 */
export function Checkbox({ name, checked, onChange }: { name: string; checked: boolean; onChange: (checked: boolean) => void }) {
  const [shown, setShown] = useState(checked);
  useEffect(() => setShown(checked), [checked]);
  return (
    <input
      type="checkbox"
      name={name}
      checked={shown}
      onChange={(e) => {
        const next = (e.target as HTMLInputElement).checked;
        setShown(next);
        onChange(next);
      }}
    />
  );
}
