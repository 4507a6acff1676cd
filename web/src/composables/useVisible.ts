// Whether an element is on screen (or within `margin` of it): drives
// infinite scroll without scroll listeners.
import { onBeforeUnmount, ref, watch, type Ref } from 'vue'

export function useVisible(el: Ref<HTMLElement | null>, margin = '400px'): Ref<boolean> {
  const visible = ref(false)
  let observer: IntersectionObserver | null = null
  watch(
    el,
    (node) => {
      observer?.disconnect()
      observer = null
      visible.value = false
      if (!node || typeof IntersectionObserver === 'undefined') return
      observer = new IntersectionObserver((entries) => {
        visible.value = entries.some((e) => e.isIntersecting)
      }, { rootMargin: margin })
      observer.observe(node)
    },
    { immediate: true, flush: 'post' },
  )
  onBeforeUnmount(() => observer?.disconnect())
  return visible
}
